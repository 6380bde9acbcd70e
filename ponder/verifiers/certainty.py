"""Self-certainty: how sure a model was of its chain, from logprobs it produced anyway.

It costs no extra model call, so it is the default score for best-of-N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def self_certainty(logprobs: Sequence[float] | None) -> float | None:
    """Mean token logprob (<= 0); None without logprobs, never a made-up 0."""
    if not logprobs:
        return None
    return sum(logprobs) / len(logprobs)


def certainty_score(logprobs: Sequence[float] | None) -> float | None:
    """Self-certainty mapped to (0, 1] as exp(mean logprob): the geometric mean of the
    token probabilities, so scores of chains of different lengths compare."""
    mean = self_certainty(logprobs)
    return None if mean is None else math.exp(mean)
