"""Grading against a reference, the strict grader, and self-certainty."""

from __future__ import annotations

import math

import pytest

import ponder.verifiers
from ponder.verifiers.certainty import certainty_score, self_certainty
from ponder.verifiers.grading import Grade, exact_match, grade


@pytest.mark.parametrize(
    ("predicted", "reference", "expected"),
    [("42", "42.0", Grade.CORRECT), (r"\frac{1}{2}", "0.5", Grade.CORRECT),
     ("41", "42", Grade.INCORRECT), (None, "42", Grade.INCORRECT),
     ("42", None, Grade.UNKNOWN), (None, None, Grade.UNKNOWN)],
    ids=["equivalent-number", "equivalent-fraction", "wrong", "no-answer", "no-reference",
         "neither"],
)
def test_grade(predicted: str | None, reference: str | None, expected: Grade) -> None:
    assert grade(predicted, reference) is expected


def test_grade_prints_as_its_value() -> None:
    assert f"{grade('1', '1')}" == "correct"


@pytest.mark.parametrize(
    ("predicted", "reference", "expected"),
    [("$42$", "42", True), ("42.", " 42 ", True), ("42.0", "42", False),
     ("1+x", "x+1", False), (None, "1", False), ("1", None, False)],
    ids=["dollars", "period-and-spaces", "decimal-is-not-exact", "commuted-is-not-exact",
         "no-answer", "no-reference"],
)
def test_exact_match_is_strict(
    predicted: str | None, reference: str | None, expected: bool
) -> None:
    assert exact_match(predicted, reference) is expected


@pytest.mark.parametrize(
    ("logprobs", "mean", "score"),
    [([-1.0, -3.0], -2.0, math.exp(-2.0)), ([0.0, 0.0], 0.0, 1.0), ([], None, None),
     (None, None, None)],
    ids=["mean", "certain", "empty", "missing"],
)
def test_self_certainty(
    logprobs: list[float] | None, mean: float | None, score: float | None
) -> None:
    assert self_certainty(logprobs) == mean
    assert certainty_score(logprobs) == score


def test_package_exports() -> None:
    assert sorted(ponder.verifiers.__all__) == [
        "AnswerExtractor", "CoTPoT", "CodeTests", "Grade", "LLMJudge", "LearnedVerifier",
        "ProcessRewardModel",
        "ProcessVerifier", "ReferenceAnswer", "Score", "SelfCertainty", "SelfEvaluation", "StepJudge", "Verifier", "VoteResult",
        "answers_equivalent", "canonical_answer_key", "certainty_score", "exact_match", "grade",
        "group_answers", "majority_vote", "mean_logprob", "normalize_answer", "self_certainty",
        "self_eval", "verifiers",
    ]
