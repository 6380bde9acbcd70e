"""A study's picture: every trial, and the front of those worth their cost, overall and per
difficulty bin (the bins show where extra compute pays: often on medium problems, seldom on
the easy ones that already pass or the hard ones that never do)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ponder.tuning.pareto import TrialPoint, pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH_INCHES = 12.0
ROW_INCHES = 4.0
DPI = 100
"""The PNG is ``WIDTH_INCHES * DPI`` pixels wide and ``ROW_INCHES * DPI`` per row high."""

_AXIS_LABELS = {
    "generated_tokens": "mean generated tokens per problem",
    "wall_seconds": "mean wall seconds per problem",
}


def plot_fronts(
    points: Sequence[TrialPoint], bins_points: Mapping[str, Sequence[TrialPoint]], path: Path
) -> Path:
    """Draw accuracy against generated tokens and against wall seconds, then one panel per
    bin of ``bins_points`` (each trial's accuracy within that bin against its tokens), into
    the PNG ``path``. Tokens are on a log axis whenever every trial generated some."""
    from matplotlib.figure import Figure

    rows = 2 if bins_points else 1
    figure = Figure(figsize=(WIDTH_INCHES, ROW_INCHES * rows), dpi=DPI, layout="constrained")
    overall, *per_bin = figure.subfigures(rows, 1, squeeze=False)[:, 0]
    by_tokens, by_seconds = overall.subplots(1, 2)
    _panel(by_tokens, points, "generated_tokens", "accuracy", "Accuracy against generated tokens")
    _panel(by_seconds, points, "wall_seconds", "accuracy", "Accuracy against wall time")
    if per_bin:
        for axes, (name, found) in zip(per_bin[0].subplots(1, len(bins_points), squeeze=False)[0],
                                       bins_points.items()):
            _panel(axes, found, "generated_tokens", f"accuracy on {name} problems",
                   f"{name.capitalize()} problems")
    figure.savefig(path, dpi=DPI)
    return path


def _panel(
    axes: Axes, points: Sequence[TrialPoint], cost: str, ylabel: str, title: str
) -> None:
    """Every trial as a grey dot and the front as a line through its labelled points (with
    their accuracy intervals where known)."""
    axes.scatter([getattr(p, cost) for p in points], [p.accuracy for p in points],
                 color="0.65", s=18, label="trial")
    front = pareto_front(points, cost)
    xs, ys = [getattr(p, cost) for p in front], [p.accuracy for p in front]
    axes.plot(xs, ys, color="tab:blue", marker="o", label="Pareto front")
    for point, x, y in zip(front, xs, ys):
        if point.accuracy_interval is not None:
            low, high = point.accuracy_interval
            axes.errorbar(x, y, yerr=[[y - low], [high - y]], color="tab:blue", capsize=3)
        axes.annotate(point.label, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    if cost == "generated_tokens" and points and min(p.generated_tokens for p in points) > 0:
        from matplotlib.ticker import FuncFormatter

        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        cost_label = _AXIS_LABELS[cost] + " (log scale)"
    else:
        cost_label = _AXIS_LABELS[cost]
    axes.set(xlabel=cost_label, ylabel=ylabel, title=title, ylim=(-0.02, 1.02))
    axes.grid(True, alpha=0.3)
    if points:
        axes.legend(loc="best", fontsize="small")
