"""Best-of-N: sample N chains, score each with a verifier, pick by the scores.

``selection`` (``ponder.verifiers.selection``): ``argmax`` (default) returns the top-scored
chain (ties: shortest, then earliest) among the chains that gave an answer (all, when none
did); ``weighted`` sums scores per distinct answer and returns the answer with the largest
total (weighted best-of-N), the same vote self-consistency casts, with scores as weights;
``majority`` ignores the scores. Candidates the verifier could not score take no part in
``argmax`` and ``weighted``.

Free-form answers (``answers``, ``free_form``; see ``ponder.strategies.pooling``): the
votes (``majority``, ``weighted``) among free-form answers are taken by minimum Bayes risk
(``weighted``: each other candidate's similarity counts with its score) or universal
self-consistency; ``argmax`` picks by score as always, its answer then the chosen text.

Composition: with a ``sampler`` the candidates are the pooled results of ``n`` runs of another
strategy (``ponder.strategies.pooling``), e.g. ``n`` budget-forced chains, which the verifier
then scores. Pooled candidates carry token logprobs only when the sampler's do, so a verifier
that reads logprobs (self_certainty) needs such a sampler; the strategy graph's validation says so.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.strategies.base import strategies
from ponder.strategies.pooling import SampledStrategy
from ponder.verifiers.base import Verifier, verifiers
from ponder.verifiers.selection import SelectionRule


@strategies.register("best_of_n")
class BestOfN(SampledStrategy):
    name = "best_of_n"

    verifier: Verifier = Field(
        default_factory=lambda: verifiers.build("self_certainty"),
        description="Scores each chain; a registry name, a config with 'name', or an object.",
    )
    selection: SelectionRule = Field(
        "argmax", description="Final answer: argmax (the top-scored chain), majority, or "
        "weighted (sum of scores per answer)."
    )

    @field_validator("verifier", mode="before")
    @classmethod
    def _build_verifier(cls, value: object) -> Verifier:
        return verifiers.build(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _free_form_rule_needs_a_vote(self) -> BestOfN:
        if self.selection == "argmax" and self.free_form != "mbr":
            raise ValueError(
                f"free_form {self.free_form!r} takes a vote among free-form answers, but "
                "selection 'argmax' picks the top-scored chain: use selection 'majority' or "
                "'weighted' with it"
            )
        return self

    def gives_logprobs(self) -> bool:
        return super().gives_logprobs() if self.sampler else self.verifier.needs_logprobs

    async def run(self, problem: Problem, ctx: Run) -> Result:
        pool = await self._draw(problem, ctx, logprobs=self.verifier.needs_logprobs)
        candidates = pool.candidates
        for candidate, score in zip(candidates, await self.verifier.score(problem, candidates, ctx)):
            candidate.record(score.value, score.reason, score.steps)
        choice = await self._choose(problem, ctx, candidates, self.selection)
        return ctx.result(
            self.name, candidates, choice.selected,
            cut=pool.budget_exhausted or choice.budget_refused, exhausted_by=pool.exhausted_by,
            details={**choice.details, **pool.details},
        )
