"""Self-certainty as a verifier: how sure the model was of its own chain, from the token
logprobs it produced anyway. No extra model call, so no verifier call is charged."""

from __future__ import annotations

from typing import ClassVar

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.verifiers.base import CandidateCheck, Score, verifiers
from ponder.verifiers.certainty import certainty_score


@verifiers.register("self_certainty")
class SelfCertainty(CandidateCheck):
    """Score = exp(mean token logprob), in (0, 1]; None for a chain without logprobs."""

    needs_logprobs: ClassVar[bool] = True

    def check(self, problem: Problem, candidate: Candidate) -> Score:
        value = certainty_score(candidate.logprobs)
        return Score(None, "the chain has no token logprobs") if value is None else Score(value)
