"""Problem-level bootstrap intervals, for accuracy claims that carry their noise.

Problems are the unit that is resampled: a method's accuracy on a set is the mean of one
value per problem (1 right, 0 wrong, or a fraction), and two methods run on the same
problems are compared by resampling the problems once for both (a paired interval), which
is much narrower than two separate intervals when the methods share their samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ponder.errors import BadRequestError


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = 0.95, rounds: int = 4000, seed: int = 0
) -> Interval:
    """The mean of ``values`` (one per problem) with a percentile bootstrap interval."""
    data = _as_array(values, "values")
    means = data[_draws(len(data), rounds, seed)].mean(axis=1)
    return _interval(float(data.mean()), means, confidence)


def bootstrap_difference(
    first: Sequence[float], second: Sequence[float], *, confidence: float = 0.95,
    rounds: int = 4000, seed: int = 0,
) -> Interval:
    """mean(first) - mean(second) over the same problems, resampled together."""
    a, b = _as_array(first, "first"), _as_array(second, "second")
    if len(a) != len(b):
        raise BadRequestError(
            f"second must have one value per problem of first ({len(a)}), got {len(b)}"
        )
    draws = _draws(len(a), rounds, seed)
    return _interval(float(a.mean() - b.mean()), a[draws].mean(axis=1) - b[draws].mean(axis=1),
                     confidence)


def bootstrap_ratio(
    first: Sequence[float], second: Sequence[float], *, confidence: float = 0.95,
    rounds: int = 4000, seed: int = 0,
) -> Interval:
    """mean(first) / mean(second) over the same problems, resampled together (a draw whose
    second mean is 0 counts as an infinite ratio)."""
    a, b = _as_array(first, "first"), _as_array(second, "second")
    if len(a) != len(b):
        raise BadRequestError(
            f"second must have one value per problem of first ({len(a)}), got {len(b)}"
        )
    draws = _draws(len(a), rounds, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(b[draws].mean(axis=1) > 0,
                          a[draws].mean(axis=1) / b[draws].mean(axis=1), np.inf)
    estimate = float(a.mean() / b.mean()) if b.mean() > 0 else float("inf")
    return _interval(estimate, ratios, confidence)


def _as_array(values: Sequence[float], name: str) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or len(data) == 0:
        raise BadRequestError(f"{name} must be a non-empty list of per-problem values")
    return data


def _draws(size: int, rounds: int, seed: int) -> np.ndarray:
    if rounds < 1:
        raise BadRequestError(f"rounds must be at least 1, got {rounds}")
    return np.random.default_rng(seed).integers(0, size, size=(rounds, size))


def _interval(estimate: float, resampled: np.ndarray, confidence: float) -> Interval:
    if not 0 < confidence < 1:
        raise BadRequestError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1 - confidence) / 2 * 100
    # "nearest": no interpolation, so a bound that is an infinite ratio stays one (not nan).
    low, high = np.percentile(resampled, [tail, 100 - tail], method="nearest")
    return Interval(estimate, float(low), float(high))
