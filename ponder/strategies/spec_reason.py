"""Speculative reasoning (SpecReason, Pan et al. 2025): a small draft model writes each
reasoning step; the base model rates it and keeps it, or writes the step itself.

A reasoning step has to be sound, not token-exact, so a cheap model can write the easy ones,
and the base model's rating is one token on a prefix it already holds in its cache. Each
chain grows step by step (``SpeculativeSteps``) until a step closes the thinking (the chain
holds ``thinking.think_end``), after which the base model writes the answer in one call, or
until a step ends the sequence. A chain also stops at ``max_steps``, at ``sampling.max_tokens``
(counted in the base model's vocabulary) or when the budget ends; it is then kept as it is,
with finish reason ``length``. A chain stop string (``sampling.stop``) ends a chain like the end
of sequence, and stays in its text. ``n`` chains grow concurrently and vote (ties: the shortest
chain, then the earliest); the selected index is None when no chain has an answer.

``details`` reports the acceptance rate and the split of work: tokens each role generated
(draft steps, base steps with the answer, judge ratings: together the run's generated
tokens), the tokens of the final chains each model wrote, and how each chain ended. Thinking
tokens count every step written before the answer, rejected drafts included: they were spent
thinking.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.step_generators import SpeculativeSteps, Step, StepSession
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.selection import select


@dataclass
class _Chain:
    steps: list[Step] = field(default_factory=list)
    """Every step written, in order; only the last may be cut short."""
    ended_by: str = "answer"
    """answer, max_steps, max_tokens, budget or seconds."""

    @property
    def kept(self) -> list[Step]:
        return [step for step in self.steps if step.cut is None]

    @property
    def text(self) -> str:
        return "".join(step.text for step in self.kept)


@strategies.register("spec_reason")
class SpecReason(Strategy):
    name = "spec_reason"

    n: int = Field(1, ge=1, le=256, description="Chains grown at once, step by step; 2+ vote.")
    steps: SpeculativeSteps = Field(
        default_factory=SpeculativeSteps,
        description="The draft model and the acceptance threshold.",
    )
    step: StepConfig = Field(StepConfig(), description="Where a step ends (delimiters, size).")
    max_steps: int = Field(64, ge=1, description="Most reasoning steps per chain.")
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    @field_validator("step")
    @classmethod
    def _no_answer_marker(cls, step: StepConfig) -> StepConfig:
        if step.answer_marker is not None:
            raise ValueError(
                "answer_marker ends a path of a step search; a speculative chain ends when its "
                "thinking closes (thinking.think_end): leave step.answer_marker unset"
            )
        return step

    async def run(self, problem: Problem, ctx: Run) -> Result:
        session = await self.steps.open(
            problem, ctx, step=self.step, sampling=self.sampling, system_prompt=self.system_prompt,
            thinking=self.thinking,
        )
        # Seeds drawn in chain order: reproducible however the chains' calls interleave.
        seeds = [ctx.next_seed() for _ in range(self.n)]
        chains = await asyncio.gather(
            *(self._grow(session, random.Random(seed)) for seed in seeds)
        )
        candidates = [self._candidate(i, chain, ctx) for i, chain in enumerate(chains)]
        winner, evidence = select(candidates, "majority")
        cut = any(chain.ended_by in ("budget", "seconds") for chain in chains)
        return ctx.result(
            self.name, candidates, winner, cut=cut,
            details={**evidence, **_split(chains, session)},
        )

    async def _grow(self, session: StepSession, rng: random.Random) -> _Chain:
        """One chain, step by step, until it answers or a limit ends it."""
        chain, prefix, written = _Chain(), session.root, 0
        while True:
            answering = self.thinking.thinking_end(chain.text) is not None
            left = self.sampling.max_tokens - written
            if left <= 0 or (not answering and len(chain.steps) >= self.max_steps):
                chain.ended_by = "max_tokens" if left <= 0 else "max_steps"
                return chain
            write = session.finish if answering else session.next_step
            step = await write(prefix, max_tokens=left, seed=rng.randrange(2**31))
            chain.steps.append(step)
            if step.cut is not None:
                chain.ended_by = step.cut
                return chain
            prefix, written = prefix.extend(step), written + len(step.token_ids)
            if answering or step.ends_chain:
                chain.ended_by = "max_tokens" if step.finish_reason == "length" else "answer"
                return chain

    def _candidate(self, index: int, chain: _Chain, ctx: Run) -> Candidate:
        ids = [token for step in chain.kept for token in step.token_ids]
        text = chain.text
        return Candidate(
            index=index,
            text=text,
            num_tokens=len(ids),
            finish_reason="stop" if chain.ended_by == "answer" else "length",
            answer=self.extractor.extract(text),
            thinking_tokens=self.thinking.split_tokens(ids, ctx.decode),
            token_ids=ids,
        )


def _split(chains: list[_Chain], session: StepSession) -> dict[str, Any]:
    """Acceptance and who did the work: tokens generated per role, tokens kept per author."""
    steps = [step for chain in chains for step in chain.steps]
    kept = [step for chain in chains for step in chain.kept]
    judged = [step for step in steps if step.judged]
    accepted = sum(step.author == "draft" for step in judged)

    def generated(role: str) -> int:
        return sum(step.usage[role].generated_tokens for step in steps if role in step.usage)

    def kept_by(author: str) -> int:
        return sum(len(step.token_ids) for step in kept if step.author == author)

    return {
        "steps": len(kept),
        "accepted_steps": accepted,
        "rejected_steps": len(judged) - accepted,
        "acceptance_rate": round(accepted / len(judged), 4) if judged else None,
        "unrated_steps": sum(step.rating is None for step in judged),
        "judge_calls": sum("judge" in step.usage for step in steps),
        "draft_generated_tokens": generated("draft"),
        "base_generated_tokens": generated("base"),
        "judge_generated_tokens": generated("judge"),
        "draft_tokens_kept": kept_by("draft"),
        "base_tokens_kept": kept_by("base"),
        "shared_token_ids": session.shares_ids,
        "ended_by": dict(Counter(chain.ended_by for chain in chains)),
    }

