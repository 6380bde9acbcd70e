"""Self-certainty as a verifier: how sure the model was of its own chain, from the token
logprobs it produced anyway. No extra model call, so no verifier call is charged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier, verifiers
from ponder.verifiers.certainty import certainty_score


@verifiers.register("self_certainty")
class SelfCertainty(Verifier):
    """Score = exp(mean token logprob), in (0, 1]; None for a chain without logprobs."""

    needs_logprobs: ClassVar[bool] = True
    counts_as_call: ClassVar[bool] = False

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        return [
            Score(value) if (value := certainty_score(c.logprobs)) is not None
            else Score(None, "the chain has no token logprobs")
            for c in candidates
        ]
