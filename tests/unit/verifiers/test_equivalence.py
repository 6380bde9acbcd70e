"""Answer equivalence, canonical keys and grouping."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.verifiers.equivalence import (
    answers_equivalent,
    canonical_answer_key,
    group_answers,
    normalize_answer,
)

EQUIVALENCE_CASES = [
    ("integer-vs-decimal", "42", "42.0", True),
    ("dollars", "$42$", "42", True),
    ("thousands", "1,000", "1000", True),
    ("fraction-vs-decimal", "1/2", "0.5", True),
    ("latex-fraction-vs-decimal", r"\frac{1}{2}", "0.5", True),
    ("dfrac", r"\dfrac{3}{4}", "0.75", True),
    ("negative-fraction", "-0.5", r"-\frac{1}{2}", True),
    ("rounded-decimal", "1/3", "0.333333", True),
    ("commuted-sum", "x+1", "1+x", True),
    ("unevaluated-sum", "3 + 4", "7", True),
    ("surds", r"\sqrt{8}", r"2\sqrt{2}", True),
    ("boxed-and-period", r"\boxed{42}.", "42", True),
    ("prose-ignores-case", "Yes", "yes", True),
    ("different-numbers", "7", "8", False),
    ("sign", "-3", "3", False),
    ("coarse-decimal", "1/3", "0.33", False),
    ("different-expressions", "x+1", "x+2", False),
    ("pi-is-not-a-decimal", r"\pi", "3.14", False),
    ("anagram-words", "Paris", "pairs", False),
    ("garbage", "}{", "\\", False),
    ("broken-latex", r"\frac{", "1", False),
    ("zero-denominator", "3/0", "0", False),
    ("power-tower-is-not-evaluated", "10^{10^{10}}", "5", False),
    ("huge-factorial-is-not-evaluated", "1000000!", "5", False),
    ("five-thousand-digits-do-not-raise", "9" * 5000, "5", False),
]


@pytest.mark.parametrize(
    ("a", "b", "same"), [c[1:] for c in EQUIVALENCE_CASES], ids=[c[0] for c in EQUIVALENCE_CASES]
)
def test_answers_equivalent_both_ways(a: str, b: str, same: bool) -> None:
    assert answers_equivalent(a, b) is same
    assert answers_equivalent(b, a) is same


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=16), st.text(max_size=16))
def test_equivalence_never_raises(a: str, b: str) -> None:
    assert answers_equivalent(a, b) in (True, False)


@pytest.mark.parametrize(
    ("answer", "normalized"),
    [(" $42$. ", "42"), (r"\(x + 1\)", "x + 1"), (r"\text{Paris}", "Paris"),
     (r"\left(1, 2\right)", "(1, 2)"), ("$x$ and $y$", "$x$ and $y$"), (r"\$5", "5")],
    ids=["dollars-and-period", "inline-math", "text", "left-right", "inner-dollars-kept",
         "currency"],
)
def test_normalize_answer(answer: str, normalized: str) -> None:
    assert normalize_answer(answer) == normalized


@pytest.mark.parametrize(
    ("answers", "key"),
    [(["42", "42.0", " $42$ ", "84/2", r"\boxed{42}"], "42"),
     (["1,000", "1000", "1000.00"], "1000"),
     (["0.5", "1/2", r"\frac{1}{2}"], "1/2"),
     (["x + 1", "x+1"], "x+1"),
     ([r"\sin x"], r"\sin x")],
    ids=["forty-two", "thousands", "half", "spaces-around-operators", "space-between-letters"],
)
def test_canonical_answer_key(answers: list[str], key: str) -> None:
    assert {canonical_answer_key(a) for a in answers} == {key}


def test_group_answers_keeps_first_appearance_order_and_skips_none() -> None:
    answers = ["7", None, "42", "7.0", r"\frac{84}{2}", None, "8", "x+1", "1+x"]
    assert group_answers(answers) == [[0, 3], [2, 4], [6], [7, 8]]


def test_group_answers_of_nothing() -> None:
    assert group_answers([]) == []
    assert group_answers([None, None]) == []


def test_math_verify_runs_outside_the_main_thread() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(answers_equivalent, "2y+3", "3+2y").result()
