"""Answer equivalence and grouping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.verifiers.equivalence import answers_equivalent, canonical_answer_key, group_answers
from ponder.verifiers.grading import exact_match, grade


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("42", "42.0", True),
        ("$42$", "42", True),
        ("1,000", "1000", True),
        ("2/4", "1/2", True),
        ("1/2", "0.5", True),
        (r"\frac{1}{2}", "0.5", True),
        ("x+1", "1+x", True),
        ("3 + 4", "7", True),
        ("7", "8", False),
        ("-3", "3", False),
        ("x+1", "x+2", False),
        ("}{", "\\", False),
        (r"\frac{", "1", False),
    ],
    ids=["decimal-zero", "dollars", "thousands", "fraction-terms", "fraction-decimal",
         "latex-fraction", "commuted-sum", "unevaluated-sum", "different-numbers", "sign",
         "different-expressions", "garbage", "broken-latex"],
)
def test_answers_equivalent(a: str, b: str, same: bool) -> None:
    assert answers_equivalent(a, b) is same
    assert answers_equivalent(b, a) is same


@given(st.text(max_size=20), st.text(max_size=20))
def test_equivalence_never_raises(a: str, b: str) -> None:
    assert answers_equivalent(a, b) in (True, False)


def test_canonical_keys_normalise_plain_numbers() -> None:
    assert {canonical_answer_key(x) for x in ["42", "42.0", " $42$ ", "84/2"]} == {"42"}


def test_group_answers_in_order_of_first_appearance() -> None:
    assert group_answers(["7", None, "42", "7.0", r"\frac{84}{2}", None, "8"]) == [[0, 3], [2, 4], [6]]


@pytest.mark.parametrize(
    ("predicted", "reference", "expected"),
    [("42", "42.0", "correct"), ("41", "42", "incorrect"), (None, "42", "incorrect"), ("42", None, "unknown")],
    ids=["equivalent", "wrong", "no-answer", "no-reference"],
)
def test_grade(predicted: str | None, reference: str | None, expected: str) -> None:
    assert grade(predicted, reference) == expected


def test_exact_match_is_strict_about_expressions() -> None:
    assert exact_match("$42$", "42.0")
    assert not exact_match("x+1", "1+x")
    assert not exact_match(None, "1")
