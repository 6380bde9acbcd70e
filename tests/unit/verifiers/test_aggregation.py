"""Step-score aggregation and step splitting."""

from __future__ import annotations

import pytest

from ponder.verifiers.aggregation import aggregate
from ponder.verifiers.process import split_steps


@pytest.mark.parametrize(
    ("how", "scores", "expected"),
    [
        ("last", [0.9, 0.2, 0.6], 0.6),
        ("min", [0.9, 0.2, 0.6], 0.2),
        ("prod", [0.5, 0.5, 0.8], 0.2),
        ("mean", [0.9, 0.3, 0.6], 0.6),
        ("min", [0.9, None, 0.6], 0.6),
        ("last", [0.9, None], 0.9),
        ("mean", [None, None], None),
        ("prod", [], None),
    ],
    ids=["last", "min", "prod", "mean", "min-skips-unscored", "last-scored-step",
         "nothing-scored", "no-steps"],
)
def test_aggregate(how: str, scores: list, expected: float | None) -> None:
    result = aggregate(scores, how)  # type: ignore[arg-type]
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_split_steps_drops_empty_steps_and_keeps_undelimited_text_whole() -> None:
    assert split_steps("a\n\n\n\nb\n\n", "\n\n") == ["a", "b"]
    assert split_steps("one line", "\n\n") == ["one line"]
    assert split_steps("", "\n\n") == []
