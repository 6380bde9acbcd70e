"""The trials worth their cost: the Pareto front of accuracy against a cost.

A trial is on the front when no other trial is at least as accurate and at most as costly
and better in one of the two; every other trial buys less accuracy for the same compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import BadRequestError
from ponder.experiments.report import format_table

COSTS = ("generated_tokens", "wall_seconds")
"""The attributes of a ``TrialPoint`` a front can trade accuracy against."""


@dataclass(frozen=True)
class TrialPoint:
    """One trial of a study: a strategy config and what it scored and cost on the split."""

    label: str
    """Short, for tables and plots: 'best_of_n(n=8, verifier=self_eval)'."""
    strategy: dict[str, Any]
    """The strategy config the trial ran."""
    accuracy: float
    generated_tokens: float
    """Mean per problem."""
    wall_seconds: float
    """Mean per problem."""
    folder: Path | None = None
    """The trial's run folder."""
    accuracy_interval: tuple[float, float] | None = None
    """A confidence interval of the accuracy (problems resampled), when one was computed."""


def pareto_front(points: Sequence[TrialPoint], cost: str = "generated_tokens") -> list[TrialPoint]:
    """The points no other point dominates (accuracy up, ``cost`` down), cheapest first; of
    points with the same accuracy and cost only the first in ``points`` is kept."""
    if cost not in COSTS:
        raise BadRequestError(f"cost must be one of {list(COSTS)}, got {cost!r}")
    # Cheapest first, the most accurate first among equally cheap, then input order: each
    # point is then dominated exactly when it is no more accurate than one before it.
    order = sorted(
        range(len(points)), key=lambda i: (getattr(points[i], cost), -points[i].accuracy, i)
    )
    front: list[TrialPoint] = []
    for i in order:
        if not front or points[i].accuracy > front[-1].accuracy:
            front.append(points[i])
    return front


def front_table(points: Sequence[TrialPoint], front: Sequence[TrialPoint],
                time_front: Sequence[TrialPoint] | None = None) -> str:
    """An aligned text table of ``points`` by mean generated tokens (tokens and seconds per
    problem); ``front`` (points of ``points``, as ``pareto_front`` returns them) is marked *,
    and so is ``time_front`` (the front by wall time) in a column of its own when given."""
    on_front = {id(point) for point in front}
    on_time_front = {id(point) for point in time_front or ()}
    rows = [
        {
            "label": point.label,
            "accuracy": _accuracy(point),
            "tokens": point.generated_tokens,
            "seconds": point.wall_seconds,
            "front": "*" if id(point) in on_front else "",
            **({"time_front": "*" if id(point) in on_time_front else ""}
               if time_front is not None else {}),
        }
        for point in sorted(points, key=lambda point: point.generated_tokens)
    ]
    return format_table(rows)


def _accuracy(point: TrialPoint) -> str:
    if point.accuracy_interval is None:
        return f"{point.accuracy:.3f}"
    low, high = point.accuracy_interval
    return f"{point.accuracy:.3f} [{low:.3f}, {high:.3f}]"
