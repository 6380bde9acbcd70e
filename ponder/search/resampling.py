"""Sequential Monte Carlo resampling: which particles survive, and how many copies each gets.

Weights come from rewards read as log-likelihoods: a particle's weight is proportional to
``exp(reward / temperature)`` (``softmax``), so a low temperature follows the scorer closely
and a high one keeps the population diverse. The effective sample size ``1 / sum(w_i^2)``
(normalized weights) says how many particles the weights are really worth; a filter
resamples when it falls below ``threshold × N`` (``threshold=1`` resamples at every step,
``0`` never).

Every scheme is unbiased: particle ``i`` gets ``N × w_i`` copies in expectation. They differ
in how much the copy counts vary around that (multinomial the most; residual, stratified
and systematic less), and variance is noise the search pays for. The random generator is
always passed in, so a seeded run resamples the same way every time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import numpy as np

from ponder.errors import BadRequestError, UnknownNameError

Scheme = Literal["multinomial", "systematic", "stratified", "residual"]
SCHEMES: tuple[str, ...] = get_args(Scheme)


def softmax(log_weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Normalized weights from log-weights. ``-inf`` (a dropped particle) becomes weight 0;
    at least one log-weight must be finite."""
    logs = np.asarray(log_weights, dtype=float)
    if logs.ndim != 1 or logs.size == 0:
        raise BadRequestError(f"log_weights must be a non-empty list of numbers, got {logs.shape}")
    if np.isnan(logs).any() or np.isposinf(logs).any():
        raise BadRequestError(f"log_weights must be finite or -inf, got {logs.tolist()}")
    if np.isneginf(logs).all():
        raise BadRequestError("log_weights are all -inf: every particle has weight 0")
    shifted = np.exp(logs - logs.max())
    return shifted / shifted.sum()


def effective_sample_size(weights: Sequence[float] | np.ndarray) -> float:
    """``1 / sum(w_i^2)`` of the normalized weights: N for uniform weights, 1 when one
    particle holds all the weight."""
    normalized = _normalized(weights)
    return float(1.0 / np.square(normalized).sum())


def needs_resampling(weights: Sequence[float] | np.ndarray, threshold: float) -> bool:
    """True when ``ESS / N < threshold``; ``threshold >= 1`` resamples every time (uniform
    weights included, whose ESS is exactly N), ``0`` never."""
    check_threshold(threshold)
    if threshold >= 1.0:
        return True
    return effective_sample_size(weights) < threshold * len(weights)


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise BadRequestError(
            f"ess_threshold must be in [0, 1] (a fraction of the particles), got {threshold}"
        )
    return float(threshold)


def resample(
    weights: Sequence[float] | np.ndarray,
    n: int,
    scheme: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` ancestor indices drawn by ``scheme``, in ascending order. Particles of weight 0
    are never drawn. Weights need not be normalized."""
    if scheme not in _SCHEMES:
        raise UnknownNameError("resampling scheme", scheme, SCHEMES)
    if n < 0:
        raise BadRequestError(f"n (the number of particles to draw) must be >= 0, got {n}")
    normalized = _normalized(weights)
    if n == 0:
        return np.zeros(0, dtype=int)
    return _SCHEMES[scheme](normalized, n, rng)


# -- schemes ------------------------------------------------------------------------------
def _multinomial(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return _inverse_cdf(weights, np.sort(rng.random(n)))


def _stratified(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """One independent uniform in each of the ``n`` equal strata of [0, 1)."""
    return _inverse_cdf(weights, (np.arange(n) + rng.random(n)) / n)


def _systematic(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """One uniform, shifted by 1/n: each particle gets floor or ceil of ``n × w_i`` copies."""
    return _inverse_cdf(weights, (np.arange(n) + rng.random()) / n)


def _residual(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``floor(n × w_i)`` copies for sure, the remainder drawn multinomially from what is left."""
    expected = n * weights
    sure = np.floor(expected).astype(int)
    rest = n - int(sure.sum())
    ancestors = np.repeat(np.arange(weights.size), sure)
    if rest > 0:
        residual = expected - sure
        ancestors = np.concatenate([ancestors, _multinomial(residual / residual.sum(), rest, rng)])
    return np.sort(ancestors)


_SCHEMES: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "multinomial": _multinomial,
    "systematic": _systematic,
    "stratified": _stratified,
    "residual": _residual,
}


def _inverse_cdf(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """For each uniform in [0, 1), the particle whose slice of the cumulative weights holds
    it (zero-weight particles have empty slices)."""
    cumulative = np.cumsum(weights)
    last = int(np.flatnonzero(weights)[-1])
    cumulative[last:] = 1.0  # rounding must not leave a uniform past the last positive slice
    return np.searchsorted(cumulative, uniforms, side="right")


def _normalized(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(weights, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise BadRequestError(f"weights must be a non-empty list of numbers, got {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise BadRequestError(f"weights must be finite and >= 0, got {values.tolist()}")
    total = values.sum()
    if total <= 0:
        raise BadRequestError("weights sum to 0: at least one particle needs a positive weight")
    return values / total
