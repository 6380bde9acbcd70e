"""The rule-based outcome check as a verifier: does the candidate's answer equal the problem's
reference answer (math-verify equivalence)? For experiments with known answers, where it
gives the oracle upper bound of best-of-N; a problem without a reference is not scored."""

from __future__ import annotations

from typing import ClassVar

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.verifiers.base import CandidateCheck, Score, verifiers
from ponder.verifiers.grading import grade


@verifiers.register("reference_answer")
class ReferenceAnswer(CandidateCheck):
    """1.0 for an answer equivalent to the reference, 0.0 otherwise."""

    scores_partial_paths: ClassVar[bool] = False

    def check(self, problem: Problem, candidate: Candidate) -> Score:
        answer, reference = candidate.answer, problem.reference
        if reference is None:
            return Score(None, "problem has no reference answer")
        if answer is None:
            return Score(0.0, "no answer found in the chain")
        if grade(answer, reference) == "correct":
            return Score(1.0)
        return Score(0.0, f"answer {answer!r} differs from the reference {reference!r}")
