"""Self-certainty from the logprobs a model produced while writing a chain."""

from __future__ import annotations

import math
from collections.abc import Sequence


def self_certainty(logprobs: Sequence[float] | None) -> float | None:
    """Mean token logprob (<= 0); None when there are no logprobs."""
    if not logprobs:
        return None
    return sum(logprobs) / len(logprobs)


def certainty_score(logprobs: Sequence[float] | None) -> float | None:
    """Self-certainty mapped to (0, 1]: the geometric mean of the token probabilities."""
    mean = self_certainty(logprobs)
    return None if mean is None else math.exp(mean)
