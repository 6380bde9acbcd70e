"""Adaptive sampling (Manvi et al., "Adaptive Inference-Time Compute: LLMs Can Predict if They
Can Do Better, Even Mid-Generation"): draw chains in growing waves and stop as soon as one is
good enough, so an easy question costs one chain and a hard one gets up to ``n_max``.

Good enough is the verifier's score reaching ``threshold``: by default the model's own
self-evaluation (``self_eval``), one generated token per chain on the chain's cached prefix.
Wave ``i`` draws ``waves[i]`` chains (the last size repeats), in one request with ``n`` set,
never past ``n_max`` in all. Sampling stops at the threshold, at ``n_max``, or when the
budget ends (``details["stopped_by"]``); then the final answer is chosen by ``selection``.

With ``prune_at``, a wave's chains stop at each prune point in turn; those still running are
scored as they stand, the lowest-scored ``prune_share`` of them (rounded down; ties: the later
chain) are dropped, and the rest continue from their own token ids. A dropped chain stays a
candidate with finish reason ``aborted`` and its score at the point, its tokens count in the
usage, and it cannot be selected. The budget is held segment by segment, so a wave it admits
to the first point may be refused its continuations: those chains stay, cut at the point, and
the budget is said to have ended the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ponder.core.generation import Completion, SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.sampling import sample_chains
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Verifier, verifiers
from ponder.verifiers.selection import SelectionRule, select
from ponder.verifiers.self_eval import SelfEvaluation

StoppedBy = Literal["threshold", "n_max", "budget"]
PositiveInt = Annotated[int, Field(ge=1)]


@strategies.register("adaptive")
class AdaptiveSampling(Strategy):
    name = "adaptive"

    n_max: int = Field(16, ge=1, le=1024, description="Most chains drawn in all.")
    waves: tuple[PositiveInt, ...] = Field(
        (1, 2, 4, 8), min_length=1,
        description="Chains drawn per wave, in order; the last size repeats until n_max.",
    )
    threshold: float = Field(
        0.8, ge=0.0, le=1.0,
        description="Stop once the best chain's score reaches this (self_eval: P(No)).",
    )
    verifier: Verifier = Field(
        default_factory=lambda: verifiers.build("self_eval"),
        description="Scores chains (and, with pruning, unfinished ones); a registry name, a "
        "config with 'name', or an object.",
    )
    selection: SelectionRule = Field(
        "argmax", description="Final answer: argmax (the top-scored chain), majority, or "
        "weighted (sum of scores per answer), among the chains not pruned.",
    )
    prune_at: tuple[PositiveInt, ...] = Field(
        (), description="Token counts at which each wave's running chains are scored and the "
        "lowest-scored prune_share dropped; increasing, below sampling.max_tokens. (): none.",
    )
    prune_share: float = Field(
        0.5, gt=0.0, lt=1.0, description="Share of the running chains dropped at each point."
    )
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    @field_validator("verifier", mode="before")
    @classmethod
    def _build_verifier(cls, value: object) -> Verifier:
        return verifiers.build(value)  # type: ignore[arg-type]

    @field_validator("prune_at")
    @classmethod
    def _increasing(cls, points: tuple[int, ...]) -> tuple[int, ...]:
        if any(later <= earlier for earlier, later in zip(points, points[1:])):
            raise ValueError(f"prune_at must be strictly increasing token counts, got {points}")
        return points

    @model_validator(mode="after")
    def _fits_the_chains(self) -> AdaptiveSampling:
        if self.prune_at and self.prune_at[-1] >= self.sampling.max_tokens:
            raise ValueError(
                f"prune_at must be below sampling.max_tokens ({self.sampling.max_tokens}), "
                f"got {self.prune_at[-1]}: no chain runs past its end"
            )
        verifier = self.verifier
        if isinstance(verifier, SelfEvaluation) and verifier.system_prompt != self.system_prompt:
            raise ValueError(
                "verifier.system_prompt must equal system_prompt: self-evaluation continues "
                f"the chains' own prompt (got {verifier.system_prompt!r} and "
                f"{self.system_prompt!r}); set both"
            )
        return self

    def gives_logprobs(self) -> bool:
        return self.verifier.needs_logprobs

    async def run(self, problem: Problem, ctx: Run) -> Result:
        candidates: list[Candidate] = []
        drawn: list[int] = []
        stopped_by: StoppedBy | None = None
        best: float | None = None
        while stopped_by is None:
            size = self.waves[min(len(drawn), len(self.waves) - 1)]
            wave, cut = await self._wave(
                problem, ctx, min(size, self.n_max - len(candidates)), len(candidates)
            )
            candidates += wave
            if wave:
                drawn.append(len(wave))
            best = max((c.score for c in _selectable(candidates) if c.score is not None),
                       default=None)
            if best is not None and best >= self.threshold:
                stopped_by = "threshold"
            elif cut or ctx.ledger.exhausted:
                stopped_by = "budget"
            elif len(candidates) >= self.n_max:
                stopped_by = "n_max"
        selected, evidence = select(_selectable(candidates), self.selection)
        pruned = [c for c in candidates if c.finish_reason == "aborted"]
        details: dict[str, Any] = {
            **evidence,
            "waves": drawn,
            "samples": len(candidates),
            "stopped_by": stopped_by,
            "stop_score": best,
            "pruned": len(pruned),
            "pruned_tokens": sum(c.num_tokens for c in pruned),
        }
        return ctx.result(
            self.name, candidates, selected, cut=stopped_by == "budget", details=details
        )

    async def _wave(
        self, problem: Problem, ctx: Run, size: int, offset: int
    ) -> tuple[list[Candidate], bool]:
        """``size`` chains numbered from ``offset``, pruned on the way when asked, scored;
        and whether the budget cut them short."""
        points = self.prune_at
        first = self.sampling.model_copy(update={"max_tokens": points[0]}) if points else None
        chains = await sample_chains(
            problem, ctx, n=size, sampling=first or self.sampling, extractor=self.extractor,
            system_prompt=self.system_prompt, logprobs=self.verifier.needs_logprobs,
            thinking=None if points else self.thinking,  # pruned chains: counted whole below
        )
        wave = [dataclasses.replace(c, index=offset + c.index) for c in chains.candidates]
        cut = chains.budget_exhausted
        if points:
            prompt = ctx.render(problem, self.system_prompt)
            for point, end in zip(points, [*points[1:], self.sampling.max_tokens]):
                running = [c for c in wave if c.finish_reason == "length" and c.num_tokens == point]
                survivors = await self._prune(problem, running, point, ctx)
                cut = not await self._continue(prompt, survivors, end - point, ctx) or cut
            for candidate in wave:
                candidate.thinking_tokens = self.thinking.split_tokens(
                    candidate.token_ids, ctx.decode
                )
                ctx.charge_thinking(candidate.thinking_tokens)
        finished = _selectable(wave)
        for candidate, score in zip(finished, await self.verifier.score(problem, finished, ctx)):
            candidate.record(score.value, score.reason, score.steps)
        return wave, cut

    async def _prune(
        self, problem: Problem, running: list[Candidate], point: int, ctx: Run
    ) -> list[Candidate]:
        """Score the chains still running at ``point`` and mark the lowest-scored share
        aborted (an unscored chain ranks lowest); the survivors, in order."""
        for candidate, score in zip(running, await self.verifier.score(problem, running, ctx)):
            candidate.record(score.value, score.reason, score.steps)
        ranked = sorted(
            running, key=lambda c: (c.score is not None, c.score or 0.0, -c.index)
        )
        dropped = {id(c) for c in ranked[: int(self.prune_share * len(running) + 1e-9)]}
        for candidate in running:
            if id(candidate) in dropped:
                candidate.finish_reason = "aborted"
                candidate.score_reason = f"pruned at {point} tokens"
        return [c for c in running if id(c) not in dropped]

    async def _continue(
        self, prompt: list[int], chains: list[Candidate], max_tokens: int, ctx: Run
    ) -> bool:
        """Run every chain on by up to ``max_tokens`` from its own ids (prompt + generated,
        so the engine's prefix cache serves them), all at once. False when the budget
        refused or cut any of them."""
        seeds = [ctx.next_seed() for _ in chains]  # drawn in chain order: deterministic
        states = await asyncio.gather(*(
            ctx.generate([*prompt, *chain.token_ids], self._params(max_tokens, seed))
            for chain, seed in zip(chains, seeds)
        ))
        for chain, state in zip(chains, states):
            if state is not None:
                self._extend(chain, state.completions[0])
        return all(state is not None and not state.timed_out for state in states)

    def _params(self, max_tokens: int, seed: int) -> SamplingParams:
        return SamplingParams(
            temperature=self.sampling.temperature, top_p=self.sampling.top_p,
            max_tokens=max_tokens, stop=self.sampling.stop,
            logprobs=0 if self.verifier.needs_logprobs else None, seed=seed,
        )

    def _extend(self, chain: Candidate, more: Completion) -> None:
        """``chain`` followed by its continuation ``more`` (aborted when the clock cut it)."""
        chain.token_ids = [*chain.token_ids, *more.token_ids]
        chain.text += more.text
        chain.num_tokens = len(chain.token_ids)
        chain.finish_reason = more.finish_reason
        chain.answer = self.extractor.extract(chain.text)
        if chain.logprobs is not None and more.logprobs is not None:
            chain.logprobs = [*chain.logprobs, *more.logprobs]
        if more.finish_reason == "aborted":
            chain.score_reason = "stopped by the budget's clock while it ran on"


def _selectable(candidates: list[Candidate]) -> list[Candidate]:
    """The chains that may be chosen: all but the pruned (and clock-stopped) ones."""
    return [c for c in candidates if c.finish_reason != "aborted"]
