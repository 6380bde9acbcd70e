"""Turning a process verifier's per-step scores into one score for the path.

``last`` trusts the final step (the PRM's view of the whole solution), ``min`` says a chain
is as good as its weakest step, ``prod`` treats steps as independent chances of being right,
``mean`` averages. Steps a verifier could not score (None) are left out; a path with no
scored step has no score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

Aggregation = Literal["last", "min", "prod", "mean"]

_AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "last": lambda scores: scores[-1],
    "min": min,
    "prod": math.prod,
    "mean": lambda scores: sum(scores) / len(scores),
}


def aggregate(step_scores: Sequence[float | None], how: Aggregation) -> float | None:
    scored = [s for s in step_scores if s is not None]
    return _AGGREGATIONS[how](scored) if scored else None
