"""Grading a predicted answer against a reference answer."""

from __future__ import annotations

from enum import StrEnum

from ponder.verifiers.equivalence import answers_equivalent, normalize_answer


class Grade(StrEnum):
    """A grade; a ``str``, so it prints and serialises as its value."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNKNOWN = "unknown"
    """No reference to grade against: not a wrong answer, so kept apart from INCORRECT."""


def grade(predicted: str | None, reference: str | None) -> Grade:
    """Correct when the answers are equivalent (``1/2`` for ``0.5``); no answer is incorrect."""
    if reference is None:
        return Grade.UNKNOWN
    if predicted is None:
        return Grade.INCORRECT
    return Grade.CORRECT if answers_equivalent(predicted, reference) else Grade.INCORRECT


def exact_match(predicted: str | None, reference: str | None) -> bool:
    """The strict grader: equal strings once meaningless decoration is gone (``$42$`` matches
    ``42``; ``42.0`` and ``1+x`` do not match ``42`` and ``x+1``)."""
    if predicted is None or reference is None:
        return False
    return normalize_answer(predicted) == normalize_answer(reference)
