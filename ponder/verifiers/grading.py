"""Grading a predicted answer against a reference answer."""

from __future__ import annotations

from typing import Literal

from ponder.verifiers.equivalence import answers_equivalent, canonical_answer_key

Grade = Literal["correct", "incorrect", "unknown"]


def grade(predicted: str | None, reference: str | None) -> Grade:
    """``unknown`` without a reference (not ``incorrect``); no answer is ``incorrect``."""
    if reference is None:
        return "unknown"
    if predicted is None:
        return "incorrect"
    return "correct" if answers_equivalent(predicted, reference) else "incorrect"


def exact_match(predicted: str | None, reference: str | None) -> bool:
    """The strict grader: equal after trimming decoration and normalising plain numbers."""
    if predicted is None or reference is None:
        return False
    return canonical_answer_key(predicted) == canonical_answer_key(reference)
