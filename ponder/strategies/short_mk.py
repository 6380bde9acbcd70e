"""short-m@k ("Don't Overthink It", Hassid et al., 2025): start k chains at once, stop them
all the moment m have finished, and majority-vote among those m.

Shorter chains are more often right, so the first to finish are the ones worth keeping, and
stopping the rest saves their tokens. A chain cut by ``max_tokens`` has not finished its
argument: it stays a candidate but neither counts toward m nor votes. When fewer than m
chains finish on their own (budget, clock), those that did vote.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.sampling import SampledChains, sample_chains
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.selection import select


class FinishRace(Strategy):
    """k chains race in one request; the first ``quorum`` to finish decide, the rest are
    stopped. Subclasses name the quorum field and may change how the finishers decide."""

    quorum_field: ClassVar[str]

    k: int = Field(8, ge=1, le=1024, description="Chains started at once (one request, n=k).")
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    @property
    def quorum(self) -> int:
        return getattr(self, self.quorum_field)

    @model_validator(mode="after")
    def _quorum_within_k(self) -> FinishRace:
        if self.quorum > self.k:
            name = self.quorum_field
            raise ValueError(f"{name} must be <= k, got {name}={self.quorum}, k={self.k}")
        return self

    async def run(self, problem: Problem, ctx: Run) -> Result:
        chains = await sample_chains(
            problem, ctx, n=self.k, sampling=self.sampling, extractor=self.extractor,
            system_prompt=self.system_prompt, stop_after=self.quorum,
            thinking=self.thinking,
        )
        voters = _first_stopped(chains, self.quorum)
        selected, votes = self._select(voters)
        return ctx.result(
            self.name, chains.candidates, selected,
            cut=chains.budget_exhausted, exhausted_by=chains.exhausted_by,
            details={
                "votes": votes,
                "finished_first": len(voters),
                "stopped": chains.aborted,
                "cancelled_tokens": ctx.ledger.spent.cancelled_tokens,
            },
        )

    def _select(self, voters: list[Candidate]) -> tuple[int | None, dict[str, float]]:
        """Majority among the finishers; ties to the shortest chain, then the earliest finisher."""
        winner, evidence = select(voters, "majority")
        return winner, evidence["votes"]


def _first_stopped(chains: SampledChains, quorum: int) -> list[Candidate]:
    """The first ``quorum`` chains to stop on their own, in the order they finished."""
    finished = (chains.candidates[i] for i in chains.finish_order)
    return [c for c in finished if c.finish_reason == "stop"][:quorum]


@strategies.register("short_mk")
class ShortMK(FinishRace):
    name = "short_mk"
    quorum_field = "m"

    m: int = Field(3, ge=1, le=1024, description="Finished chains that stop the rest and vote.")
