"""Problem-level bootstrap intervals: they contain the estimate, narrow with more problems,
pair two methods on the same problems, and refuse input they cannot resample."""

from __future__ import annotations

import math

import pytest

from ponder.errors import BadRequestError
from ponder.experiments.bootstrap import bootstrap_difference, bootstrap_mean, bootstrap_ratio


def test_the_interval_holds_the_mean_and_narrows_with_more_problems() -> None:
    few = bootstrap_mean([1, 0, 1, 0] * 4)
    many = bootstrap_mean([1, 0, 1, 0] * 64)
    assert few.estimate == many.estimate == 0.5
    assert few.low < 0.5 < few.high
    assert many.high - many.low < (few.high - few.low) / 3


def test_a_constant_has_no_spread() -> None:
    interval = bootstrap_mean([1.0] * 10)
    assert (interval.low, interval.estimate, interval.high) == (1.0, 1.0, 1.0)


def test_paired_difference_of_methods_that_share_problems() -> None:
    first = [1, 1, 0, 1] * 10
    second = [1, 0, 0, 1] * 10  # right wherever first is, and wrong once more in four
    difference = bootstrap_difference(first, second)
    assert difference.estimate == pytest.approx(0.25)
    assert 0 < difference.low <= 0.25 <= difference.high


def test_a_ratio_over_a_zero_baseline_is_infinite_not_nan() -> None:
    ratio = bootstrap_ratio([1, 1, 0, 0], [0, 0, 0, 0])
    assert math.isinf(ratio.estimate) and math.isinf(ratio.high)
    assert bootstrap_ratio([1, 1, 1, 1], [1, 0, 1, 0]).estimate == 2.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_mean([]), "values must be a non-empty list"),
        (lambda: bootstrap_difference([1, 0], [1]), "second must have one value per problem"),
        (lambda: bootstrap_mean([1, 0], confidence=1.0), "confidence must be in"),
        (lambda: bootstrap_mean([1, 0], rounds=0), "rounds must be at least 1"),
    ],
    ids=["empty", "unpaired", "confidence", "rounds"],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        call()
