"""The fronts figure: a PNG of the documented size, overall and per difficulty bin."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ponder.tuning.pareto import TrialPoint
from ponder.tuning.plots import DPI, ROW_INCHES, WIDTH_INCHES, plot_fronts


def point(label: str, accuracy: float, tokens: float, seconds: float,
          interval: tuple[float, float] | None = None) -> TrialPoint:
    return TrialPoint(label=label, strategy={"name": label}, accuracy=accuracy,
                      generated_tokens=tokens, wall_seconds=seconds, accuracy_interval=interval)


TRIALS = [point("greedy", 0.3, 60, 2.0), point("sc(n=4)", 0.5, 240, 5.0, (0.35, 0.65)),
          point("bon(n=4)", 0.4, 260, 4.0), point("sc(n=16)", 0.6, 960, 12.0, (0.45, 0.75))]


@pytest.mark.parametrize(
    ("bins", "rows"),
    [
        ({b: [point(p.label, p.accuracy / 2, p.generated_tokens, p.wall_seconds) for p in TRIALS]
          for b in ("easy", "medium", "hard")}, 2),
        ({}, 1),
    ],
    ids=["with-bins", "without-bins"],
)
def test_the_png_has_a_row_of_panels_per_kind(bins: dict, rows: int, tmp_path: Path) -> None:
    path = plot_fronts(TRIALS, bins, tmp_path / "fronts.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (int(WIDTH_INCHES * DPI), int(ROW_INCHES * rows * DPI))


def test_trials_without_tokens_and_no_trials_still_draw(tmp_path: Path) -> None:
    free = [point("cached", 0.2, 0, 0.1), *TRIALS]  # no log axis for a trial of 0 tokens
    plot_fronts(free, {"easy": free, "hard": []}, tmp_path / "zero.png")
    plot_fronts([], {}, tmp_path / "empty.png")
    for name in ("zero.png", "empty.png"):
        with Image.open(tmp_path / name) as image:
            image.verify()
