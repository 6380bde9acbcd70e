"""``ponder report RUN_DIRS...``: the runs of a sweep side by side, and the test-time scaling
curve, accuracy against generated tokens per problem, one line per strategy (and dataset).

A folder without a ``summary.json`` stands for every run folder below it, so a sweep's
folder is enough. The table is printed and written as CSV; the curve as PNG.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import BadRequestError

SUMMARY = "summary.json"


@dataclass(frozen=True)
class Run:
    folder: Path
    summary: dict[str, Any]

    @property
    def curve(self) -> str:
        """The line this run is a point of."""
        return f"{self.summary['strategy']} ({self.summary['dataset']})"

    @property
    def generated_tokens(self) -> float:
        return float(self.summary["tokens_per_problem"]["generated_tokens"])


def find_runs(paths: Sequence[str | Path]) -> list[Run]:
    """The runs in ``paths`` (run folders, or folders holding run folders), in path order."""
    if not paths:
        raise BadRequestError("name at least one run folder")
    summaries: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise BadRequestError(f"{path}: no such folder")
        found = [path / SUMMARY] if (path / SUMMARY).is_file() else sorted(path.rglob(SUMMARY))
        if not found:
            raise BadRequestError(f"{path}: no {SUMMARY} in it or below; is it a run folder?")
        summaries += [s for s in found if s not in summaries]
    runs = []
    for file in summaries:
        try:
            runs.append(Run(file.parent, json.loads(file.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"{file}: not a run summary ({exc})") from None
    return runs


def rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run, what it scored and what it cost, by curve, then by tokens."""
    base = Path(os.path.commonpath([run.folder.resolve() for run in runs])) if runs else Path()
    table = []
    for run in sorted(runs, key=lambda run: (run.curve, run.generated_tokens)):
        s = run.summary
        name = run.folder.resolve().relative_to(base) if len(runs) > 1 else run.folder.name
        k = max((int(key) for key in s["pass_at_k"]), default=None)
        table.append({
            "run": str(name),
            "dataset": s["dataset"],
            "strategy": s["strategy"],
            "problems": f"{s['problems']}/{s['problems_total']}",
            "accuracy": s["accuracy"],
            "k": k,
            "pass@k": s["pass_at_k"].get(str(k)) if k else None,
            "majority@k": s["majority_at_k"].get(str(k)) if k else None,
            "generated_tokens": run.generated_tokens,
            "seconds": s["wall_seconds_per_problem"],
            "cache_hit_rate": s["prefix_cache_hit_rate"],
        })
    return table


def format_table(table: Sequence[dict[str, Any]]) -> str:
    """An aligned text table (tokens and seconds are per problem)."""
    if not table:
        return ""
    cells = [[_cell(value) for value in row.values()] for row in table]
    header = list(table[0])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.0f}"
    return str(value)


def write_csv(table: Sequence[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def plot_scaling(runs: Sequence[Run], path: Path) -> int:
    """Draw accuracy against generated tokens per problem, one line per strategy and
    dataset, points in token order; returns how many runs had an accuracy to draw."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    curves: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        if run.summary["accuracy"] is not None:
            curves[run.curve].append((run.generated_tokens, run.summary["accuracy"]))
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for name, points in sorted(curves.items()):
        points.sort()
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=name)
    tokens = [x for points in curves.values() for x, _ in points]
    if tokens and min(tokens) > 0 and max(tokens) / min(tokens) > 4:
        axes.set_xscale("log", base=2)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axes.set_xlabel("generated tokens per problem")
    axes.set_ylabel("accuracy")
    axes.set_ylim(0, 1)
    axes.set_title("Test-time scaling")
    axes.grid(True, alpha=0.3)
    if curves:
        axes.legend()
    figure.savefig(path, dpi=150, bbox_inches="tight")
    return sum(len(points) for points in curves.values())


def report(paths: Sequence[str | Path], out: Path | None = None) -> tuple[str, list[Path]]:
    """Build the report of the runs in ``paths`` in ``out`` (default: the folder that holds
    them all); the printed table and the files written."""
    runs = find_runs(paths)
    table = rows(runs)
    out = out or Path(os.path.commonpath([run.folder.resolve() for run in runs]))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "report.csv")
    plot_scaling(runs, out / "scaling.png")
    return format_table(table), [out / "report.csv", out / "scaling.png"]
