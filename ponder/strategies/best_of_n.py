"""Best-of-N: sample N chains, score each with a verifier, pick by the scores.

``selection="argmax"`` returns the top-scored chain (ties: shortest, then earliest) among the
chains that gave an answer (all, when none did).
``selection="weighted"`` sums scores per distinct answer and returns the answer with the
largest total (weighted best-of-N), the same vote self-consistency casts, with scores as
weights. Candidates the verifier could not score take no part in the selection.

Composition: with a ``sampler`` the candidates are the pooled results of ``n`` runs of another
strategy (``ponder.strategies.pooling``), e.g. ``n`` budget-forced chains, which the verifier
then scores. Pooled candidates carry token logprobs only when the sampler's do, so a verifier
that reads logprobs (self_certainty) needs such a sampler; the strategy graph's validation says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.runtime import Run
from ponder.search.selection import select
from ponder.strategies.base import strategies
from ponder.strategies.pooling import SampledStrategy
from ponder.verifiers.base import Verifier, verifiers
from ponder.verifiers.vote import majority_vote


@strategies.register("best_of_n")
class BestOfN(SampledStrategy):
    name = "best_of_n"

    verifier: Verifier = Field(
        default_factory=lambda: verifiers.build("self_certainty"),
        description="Scores each chain; a registry name, a config with 'name', or an object.",
    )
    selection: Literal["argmax", "weighted"] = "argmax"

    @field_validator("verifier", mode="before")
    @classmethod
    def _build_verifier(cls, value: object) -> Verifier:
        return verifiers.build(value)  # type: ignore[arg-type]

    def gives_logprobs(self) -> bool:
        return super().gives_logprobs() if self.sampler else self.verifier.needs_logprobs

    async def run(self, problem: Problem, ctx: Run) -> Result:
        pool = await self._draw(problem, ctx, logprobs=self.verifier.needs_logprobs)
        candidates = pool.candidates
        for candidate, score in zip(candidates, await self.verifier.score(problem, candidates, ctx)):
            candidate.record(score.value, score.reason, score.steps)
        selected, details = (
            select(candidates, "highest") if self.selection == "argmax" else _weighted(candidates)
        )
        return Result(
            strategy=self.name,
            candidates=candidates,
            selected_index=selected,
            usage=ctx.ledger.spent,
            budget_exhausted=pool.budget_exhausted,
            exhausted_by=pool.exhausted_by,
            details={**details, **pool.details},
        )


def _weighted(candidates: list[Candidate]) -> tuple[int | None, dict]:
    scored = [c for c in candidates if c.score is not None]
    vote = majority_vote(
        [c.answer for c in scored], [c.num_tokens for c in scored], [c.score for c in scored]
    )
    selected = None if vote.winner_index is None else scored[vote.winner_index].index
    return selected, {"weighted_votes": vote.counts}
