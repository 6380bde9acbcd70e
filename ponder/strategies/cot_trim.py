"""CoT trimming: n chains think at once, each stopped as soon as more thinking is waste, and
their answers vote.

Two triggers, usable together (set either to None to turn it off; with both off the chains
run untrimmed, a baseline to compare against):

- probe-based early exit (Dynasor-CoT, Fu et al.): every ``probe.interval`` thinking tokens the
  chain is asked for its answer; once the last ``probe.window`` answers agree and none hedges,
  the thinking stops (``cot_probe``);
- verifier-based trimming (TrimR, Lin et al.): a judge model reads each completed thought and
  ends the thinking, with a closing prompt, on overthinking, underthinking or repetition
  (``cot_judge``).

Each chain runs through ``ChainTrimmer`` (``cot_chain``), one chain in and one trimmed chain
out, so other strategies can trim their own chains. Chains are separate engine requests, so
each can be aborted on its own; the judge's questions from all chains go out in shared batches.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from pydantic import ConfigDict, Field, model_validator

from ponder.core.parts import Part
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.cot_chain import ChainTrimmer, TrimmedChain
from ponder.strategies.cot_judge import PATTERNS, JudgeQueue, ThoughtJudge
from ponder.strategies.cot_probe import ProbeExit
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.selection import select


class TrimSettings(Part):
    """How each chain is trimmed: the triggers and the limits of the forced answer. CoT
    trimming's own settings, and self-consistency's ``trim``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part_kind = "chain trimming"
    part_label = "trim"

    max_thinking_tokens: int | None = Field(
        None, ge=1, description="Thinking tokens after which the answer is forced. None: "
        "sampling.max_tokens (a chain's own request never runs longer)."
    )
    answer_max_tokens: int = Field(
        64, ge=1, description="Most tokens of an answer written after the thinking is cut."
    )
    probe: ProbeExit | None = Field(
        ProbeExit(), description="Probe-based early exit; None turns it off."
    )
    judge: ThoughtJudge | None = Field(
        ThoughtJudge(), description="Verifier-based trimming by a judge model; None turns it off."
    )


@strategies.register("cot_trim")
class CoTTrim(Strategy, TrimSettings):
    name = "cot_trim"

    n: int = Field(
        4, ge=1, le=256, description="Chains run at once, each trimmed on its own; they vote."
    )
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    @model_validator(mode="after")
    def _thinking_limit_within_the_chain(self) -> CoTTrim:
        limit, length = self.max_thinking_tokens, self.sampling.max_tokens
        if limit is not None and limit > length:
            raise ValueError(
                f"max_thinking_tokens must be <= sampling.max_tokens (a chain's request ends "
                f"there), got {limit} > {length}"
            )
        return self

    def trimmer(self) -> ChainTrimmer:
        """The per-chain unit, configured as this strategy is."""
        return ChainTrimmer(
            thinking=self.thinking,
            extractor=self.extractor,
            sampling=self.sampling,
            answer_max_tokens=self.answer_max_tokens,
            max_thinking_tokens=self.max_thinking_tokens,
            probe=self.probe,
            judge=self.judge,
        )

    async def run(self, problem: Problem, ctx: Run) -> Result:
        prompt = ctx.render(problem, self.system_prompt)
        trimmer = self.trimmer()
        judges = JudgeQueue(self.judge, ctx) if self.judge is not None else None
        shortened = False
        try:
            started = await asyncio.gather(
                *(trimmer.trim(problem, prompt, ctx, judges=judges) for _ in range(self.n))
            )
            chains = [chain for chain in started if chain is not None]
            if not chains and (room := self._room_for_one_chain(ctx, len(prompt))) > 0:
                # Not one full chain fits: a shorter one beats no answer at all.
                shorter = await trimmer.trim(problem, prompt, ctx, judges=judges, max_tokens=room)
                chains = [shorter] if shorter is not None else []
                shortened = True
        finally:
            if judges is not None:
                await judges.drain()
        return self._result(chains, ctx, judges, shortened)

    def _room_for_one_chain(self, ctx: Run, prompt_tokens: int) -> int:
        """Tokens one chain's own request may have within what the budget has left once its
        answer is provided for (0: none)."""
        limits = [self.sampling.max_tokens]
        generated = ctx.ledger.remaining("generated_tokens")
        total = ctx.ledger.remaining("total_tokens")
        if generated is not None:
            limits.append(int(generated) - self.answer_max_tokens)
        if total is not None:
            limits.append(int(total) - prompt_tokens - self.answer_max_tokens)
        return max(0, min(limits))

    def _result(
        self, chains: list[TrimmedChain], ctx: Run, judges: JudgeQueue | None, shortened: bool
    ) -> Result:
        candidates = [chain.candidate(i) for i, chain in enumerate(chains)]
        winner, evidence = select(candidates, "majority")
        ended_by = [chain.ended_by for chain in chains]
        timed_out = any(chain.timed_out for chain in chains)
        exhausted = len(chains) < self.n or timed_out or shortened
        counts = Counter(ended_by)
        return ctx.result(
            self.name, candidates, winner, cut=exhausted,
            details={
                **evidence,
                "ended_by": ended_by,
                "kept_tokens": [chain.kept_tokens for chain in chains],
                "streamed_tokens": [chain.streamed_tokens for chain in chains],
                "chain_tokens": [chain.generated_tokens for chain in chains],
                "tokens_after_cut": sum(c.streamed_tokens - c.kept_tokens for c in chains),
                "probes": sum(chain.probes_sent for chain in chains),
                "probe_exits": counts["probe"],
                "probe_answers": [
                    [[p.thinking_tokens, p.answer, p.certain] for p in chain.probes]
                    for chain in chains
                ],
                "trims": {pattern: counts[pattern] for pattern in PATTERNS},
                "judge_calls": judges.calls if judges is not None else 0,
                "judge_batches": judges.batches if judges is not None else 0,
            },
        )
