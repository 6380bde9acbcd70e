"""The peer benchmark's report: one row per (tool, strategy, N), the target ratios computed
from rows of the same run, written as a printed table, Markdown, JSON and a plot of accuracy
against wall time."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ponder.core.problem import Problem
from ponder.verifiers.grading import grade

TOOLS = (
    "engine (server)",
    "its_hub (server)",
    "ponder (server)",
    "engine (in-process)",
    "ponder (in-process)",
)
"""The raw engine rows measure the tokens-per-second ceiling: one request with n=N per problem."""
CEILING_TOOLS = ("engine (server)", "engine (in-process)")
SEARCH_TARGET = 3.0
"""ponder in-process needs at least this many times less wall time than its_hub."""
CEILING_TARGET = 0.9
"""ponder's self-consistency needs at least this share of the raw engine's tokens per second."""


@dataclass
class Row:
    tool: str
    strategy: str
    n: int
    status: str = "ok"
    """ok, or failed (``reason`` says why)."""
    reason: str | None = None
    problems: int = 0
    correct: int | None = None
    generated_tokens: int | None = None
    wall_s: float | None = None
    requests: int | None = None
    """Server rows: sequences the server finished (vLLM counts each of a request's n samples,
    judge verdicts included); in-process ceiling: requests sent; else unknown."""
    prefix_cache_hit_rate: float | None = None
    """Cached share of prompt tokens, where the tool's engine reports it."""

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None or not self.problems else self.correct / self.problems

    @property
    def tokens_per_s(self) -> float | None:
        if self.generated_tokens is None or not self.wall_s:
            return None
        return self.generated_tokens / self.wall_s

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"accuracy": self.accuracy, "tokens_per_s": self.tokens_per_s}


def failed(tool: str, strategy: str, n: int, reason: str) -> Row:
    return Row(tool, strategy, n, status="failed", reason=reason)


def count_correct(answers: Sequence[str | None], problems: Sequence[Problem]) -> int:
    """How many answers ponder's reference grader (math-verify) accepts."""
    return sum(grade(a, p.reference) == "correct" for a, p in zip(answers, problems, strict=True))


@dataclass(frozen=True)
class Target:
    name: str
    n: int
    ratio: float | None
    goal: float
    note: str

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.ratio >= self.goal


def _find(rows: Sequence[Row], tool: str, strategy: str, n: int) -> Row | None:
    row = next((r for r in rows if (r.tool, r.strategy, r.n) == (tool, strategy, n)), None)
    return row if row is not None and row.status == "ok" else None


def noise(a: Row, b: Row) -> float:
    """Two standard errors of an accuracy difference between two rows (pooled binomial)."""
    p = ((a.correct or 0) + (b.correct or 0)) / max(1, a.problems + b.problems)
    return 2 * math.sqrt(p * (1 - p) * (1 / max(1, a.problems) + 1 / max(1, b.problems)))


def targets(rows: Sequence[Row]) -> list[Target]:
    """The issue's targets at every N both sides of a ratio have a row for."""
    found = []
    for n in sorted({r.n for r in rows}):
        for strategy in ("beam", "particle_filter"):
            ours, theirs = (
                _find(rows, "ponder (in-process)", strategy, n),
                _find(rows, "its_hub (server)", strategy, n),
            )
            if ours and theirs and ours.wall_s and theirs.wall_s:
                delta = (ours.accuracy or 0) - (theirs.accuracy or 0)
                note = f"accuracy {ours.accuracy:.2f} vs {theirs.accuracy:.2f} ({delta:+.2f}, noise ±{noise(ours, theirs):.2f})"
                found.append(
                    Target(
                        f"{strategy}: its_hub wall / ponder in-process wall",
                        n,
                        theirs.wall_s / ours.wall_s,
                        SEARCH_TARGET,
                        note,
                    )
                )
        for where in ("in-process", "server"):
            ours, ceiling = (
                _find(rows, f"ponder ({where})", "self_consistency", n),
                _find(rows, f"engine ({where})", "self_consistency", n),
            )
            if ours and ceiling and ours.tokens_per_s and ceiling.tokens_per_s:
                note = f"{ours.tokens_per_s:.1f} vs {ceiling.tokens_per_s:.1f} tok/s"
                found.append(
                    Target(
                        f"self_consistency: ponder / engine tok/s ({where})",
                        n,
                        ours.tokens_per_s / ceiling.tokens_per_s,
                        CEILING_TARGET,
                        note,
                    )
                )
    return found


_COLUMNS = (
    "tool",
    "strategy",
    "N",
    "status",
    "accuracy",
    "gen tokens",
    "wall s",
    "tok/s",
    "requests",
    "cache hit",
)


def cells(row: Row) -> list[str]:
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    status = row.status if row.reason is None else f"{row.status}: {row.reason}"
    return [
        row.tool,
        row.strategy,
        str(row.n),
        status,
        fmt(row.accuracy, ".2f"),
        fmt(row.generated_tokens, "d"),
        fmt(row.wall_s, ".1f"),
        fmt(row.tokens_per_s, ".1f"),
        fmt(row.requests, "d"),
        fmt(row.prefix_cache_hit_rate, ".0%"),
    ]


def markdown(rows: Sequence[Row], found: Sequence[Target], heading: str) -> str:
    lines = [f"# {heading}", "", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += [
        "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells(r)) + " |"
        for r in rows
    ]
    lines += ["", "## Targets", ""]
    for t in found:
        verdict = {True: "met", False: f"missed by {t.goal - (t.ratio or 0):.2f}", None: "n/a"}[
            t.met
        ]
        lines.append(
            f"- {t.name}, N={t.n}: {t.ratio:.2f} (target >= {t.goal}): {verdict}; {t.note}"
        )
    if not found:
        lines.append("- no target has both of its rows")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row], path: Path) -> None:
    """Accuracy against wall time, one marker per tool, one colour per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = dict(zip(TOOLS, "sXo^D"))
    colours = dict(
        zip(("self_consistency", "best_of_n", "beam", "particle_filter"), ("C0", "C1", "C2", "C3"))
    )
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in rows:
        if row.status != "ok" or row.accuracy is None or not row.wall_s:
            continue
        ax.scatter(
            row.wall_s,
            row.accuracy,
            marker=markers.get(row.tool, "."),
            color=colours.get(row.strategy, "k"),
        )
        ax.annotate(
            f"N={row.n}",
            (row.wall_s, row.accuracy),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    handles = [
        plt.Line2D([], [], marker=m, ls="", color="grey", label=t)
        for t, m in markers.items()
        if t not in CEILING_TOOLS
    ]
    handles += [plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in colours.items()]
    ax.legend(handles=handles, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("wall time, all problems at once (s, log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title("ponder, its_hub: accuracy against wall time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(rows: Sequence[Row], out: Path, heading: str, settings: dict[str, object]) -> str:
    """Write report.md, report.json and accuracy_vs_wall.png into ``out``; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    found = targets(rows)
    text = markdown(rows, found, heading)
    (out / "report.md").write_text(text)
    data = {
        "settings": settings,
        "rows": [r.to_dict() for r in rows],
        "targets": [asdict(t) | {"met": t.met} for t in found],
    }
    (out / "report.json").write_text(json.dumps(data, indent=2))
    plot(rows, out / "accuracy_vs_wall.png")
    return text
