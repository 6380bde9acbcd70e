"""SMC resampling: every scheme unbiased, systematic less noisy than multinomial, ESS and its
trigger, softmax weights, and clear errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ponder.errors import BadRequestError, UnknownNameError
from ponder.search.resampling import (
    SCHEMES,
    effective_sample_size,
    needs_resampling,
    resample,
    softmax,
)

WEIGHTS = np.array([0.07, 0.13, 0.21, 0.26, 0.33])
"""No weight is a multiple of 1/5, so no scheme is deterministic on these."""
DRAWS = 4000


def _counts(scheme: str, weights: np.ndarray, n: int, seed: int = 7) -> np.ndarray:
    """Copy counts of every particle over ``DRAWS`` resamplings: shape (DRAWS, particles)."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [np.bincount(resample(weights, n, scheme, rng), minlength=weights.size) for _ in range(DRAWS)]
    )


@pytest.mark.parametrize("n", [5, 8], ids=["n=N", "n>N"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_gives_n_times_the_weight_in_expectation(scheme: str, n: int) -> None:
    counts = _counts(scheme, WEIGHTS, n)
    assert (counts.sum(axis=1) == n).all()
    # Multinomial's standard error of the mean is at most sqrt(n * 0.25 / DRAWS) ~ 0.022 for
    # n=8; 0.08 is over 3.5 of those, and far below the smallest weight's expected count.
    np.testing.assert_allclose(counts.mean(axis=0), n * WEIGHTS, atol=0.08)


def test_systematic_copy_counts_vary_less_than_multinomial() -> None:
    systematic = _counts("systematic", WEIGHTS, 5).var(axis=0)
    multinomial = _counts("multinomial", WEIGHTS, 5).var(axis=0)
    assert systematic.sum() < 0.5 * multinomial.sum()
    assert (systematic < multinomial).all()


@pytest.mark.parametrize("scheme", ["systematic", "residual"])
def test_low_variance_schemes_never_give_fewer_than_floor_copies(scheme: str) -> None:
    counts = _counts(scheme, WEIGHTS, 5)
    assert (counts >= np.floor(5 * WEIGHTS)).all()


def test_systematic_gives_floor_or_ceil_copies() -> None:
    counts = _counts("systematic", WEIGHTS, 5)
    assert (counts <= np.ceil(5 * WEIGHTS)).all()


def test_multinomial_does_not_bound_copy_counts() -> None:
    counts = _counts("multinomial", WEIGHTS, 5)
    assert (counts < np.floor(5 * WEIGHTS)).any() or (counts > np.ceil(5 * WEIGHTS)).any()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zero_weight_particles_are_never_drawn(scheme: str) -> None:
    weights = np.array([0.0, 0.5, 0.0, 0.5, 0.0])
    counts = _counts(scheme, weights, 5)
    assert counts[:, [0, 2, 4]].sum() == 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_same_seed_draws_the_same_ancestors(scheme: str) -> None:
    first = resample(WEIGHTS, 5, scheme, np.random.default_rng(3))
    second = resample(WEIGHTS, 5, scheme, np.random.default_rng(3))
    assert first.tolist() == second.tolist()
    assert first.tolist() == sorted(first.tolist())


def test_unnormalized_weights_are_normalized() -> None:
    scaled = resample(WEIGHTS * 40, 5, "stratified", np.random.default_rng(1))
    assert scaled.tolist() == resample(WEIGHTS, 5, "stratified", np.random.default_rng(1)).tolist()


def test_drawing_none_returns_no_ancestors() -> None:
    assert resample(WEIGHTS, 0, "systematic", np.random.default_rng(0)).size == 0


@pytest.mark.parametrize(
    ("weights", "ess"),
    [
        ([0.25, 0.25, 0.25, 0.25], 4.0),
        ([1.0, 0.0, 0.0, 0.0], 1.0),
        ([0.5, 0.5, 0.0, 0.0], 2.0),
        ([3.0, 3.0], 2.0),
        ([0.7, 0.1, 0.1, 0.1], 1 / (0.49 + 0.03)),
        ([0.4, 0.2, 0.2, 0.2], 1 / (0.16 + 0.12)),
    ],
    ids=["uniform", "degenerate", "half-dead", "unnormalized", "skewed", "mild"],
)
def test_effective_sample_size(weights: list[float], ess: float) -> None:
    assert effective_sample_size(weights) == pytest.approx(ess)


@pytest.mark.parametrize(
    ("weights", "threshold", "expected"),
    [
        ([0.25] * 4, 1.0, True),  # 1.0 resamples every step, even at ESS = N
        ([0.25] * 4, 0.99, False),
        ([1.0, 0.0, 0.0, 0.0], 0.0, False),  # 0 never resamples
        ([0.7, 0.1, 0.1, 0.1], 0.5, True),  # ESS/N = 0.48
        ([0.7, 0.1, 0.1, 0.1], 0.45, False),
        ([0.4, 0.2, 0.2, 0.2], 0.5, False),  # ESS/N = 0.89
        ([0.4, 0.2, 0.2, 0.2], 0.9, True),
    ],
)
def test_resampling_triggers_below_the_threshold(
    weights: list[float], threshold: float, expected: bool
) -> None:
    assert needs_resampling(weights, threshold) is expected


def test_softmax_gives_dropped_particles_weight_zero_and_survives_large_logs() -> None:
    weights = softmax([1000.0, -math.inf, 1000.0 + math.log(3)])
    np.testing.assert_allclose(weights, [0.25, 0.0, 0.75])


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_must_be_a_fraction(threshold: float) -> None:
    with pytest.raises(BadRequestError, match=r"ess_threshold must be in \[0, 1\]"):
        needs_resampling([0.5, 0.5], threshold)


def test_unknown_scheme_names_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="residual, stratified, systematic"):
        resample(WEIGHTS, 5, "importance", np.random.default_rng(0))


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0.0, 0.0], "sum to 0"),
        ([0.5, -0.1], "finite and >= 0"),
        ([0.5, math.nan], "finite and >= 0"),
        ([], "non-empty"),
    ],
    ids=["all-zero", "negative", "nan", "empty"],
)
def test_bad_weights_are_refused(weights: list[float], match: str) -> None:
    with pytest.raises(BadRequestError, match=match):
        resample(weights, 2, "multinomial", np.random.default_rng(0))


def test_all_dropped_log_weights_are_refused() -> None:
    with pytest.raises(BadRequestError, match="every particle has weight 0"):
        softmax([-math.inf, -math.inf])


def test_negative_draw_count_is_refused() -> None:
    with pytest.raises(BadRequestError, match="must be >= 0"):
        resample(WEIGHTS, -1, "systematic", np.random.default_rng(0))
