"""The unbiased pass@k estimator of Chen et al. (2021) against known values, the paper's
own numerically stable form, and brute force over every k-subset."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.errors import BadRequestError
from ponder.experiments.metrics import pass_at_k


def paper_estimator(n: int, c: int, k: int) -> float:
    """The estimator as printed in the Codex paper (Chen et al., 2021, Figure 3)."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 1, 0.3),  # pass@1 is the fraction correct
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (10, 6, 5, 1.0),  # fewer than k wrong: every k-subset has a correct one
        (20, 1, 10, 0.5),  # one correct among 20, half of them drawn
        (100, 5, 10, 1 - math.comb(95, 10) / math.comb(100, 10)),
    ],
    ids=["textbook", "pass@1", "none-correct", "all-correct", "too-few-wrong", "half-drawn", "n100"],
)
def test_known_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_the_papers_stable_form(case: tuple[int, int, int]) -> None:
    n, c, k = case
    assert pass_at_k(n, c, k) == pytest.approx(paper_estimator(n, c, k), abs=1e-9)


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_is_the_share_of_k_subsets_holding_a_correct_candidate(case: tuple[int, int, int]) -> None:
    n, c, k = case
    correct = set(range(c))
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(bool(correct & set(subset)) for subset in subsets)
    assert pass_at_k(n, c, k) == pytest.approx(hits / len(subsets))


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)],
                         ids=["c-above-n", "negative-c", "k-zero", "k-above-n"])
def test_impossible_counts_are_rejected(n: int, c: int, k: int) -> None:
    with pytest.raises(BadRequestError):
        pass_at_k(n, c, k)
