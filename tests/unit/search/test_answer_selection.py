"""Final answer selection over ended paths: highest score, majority, score-weighted vote."""

from __future__ import annotations

import pytest

from ponder.core.result import Candidate
from ponder.search.selection import select


def paths(*specs: tuple[str | None, float | None, int]) -> list[Candidate]:
    return [
        Candidate(index=i, text=str(answer), num_tokens=tokens, finish_reason="stop",
                  answer=answer, score=score)
        for i, (answer, score, tokens) in enumerate(specs)
    ]


CASES = paths(
    ("12", 0.4, 30), ("13", 0.95, 20), ("12", 0.6, 10),
    ("11", None, 5), ("11", None, 6), ("11", 0.1, 7),
)


@pytest.mark.parametrize(
    ("rule", "selected", "evidence"),
    [
        ("highest", 1, {"best_score": 0.95}),
        ("weighted", 2, {"votes": {"12": 1.0, "13": 0.95, "11": 0.1}}),  # the shortest "12" path
        ("majority", 3, {"votes": {"12": 2.0, "13": 1.0, "11": 3.0}}),  # unscored paths vote too
    ],
)
def test_rules(rule: str, selected: int, evidence: dict) -> None:
    assert select(CASES, rule) == (selected, evidence)  # type: ignore[arg-type]


def test_highest_ties_go_to_the_shorter_then_the_earlier_path() -> None:
    assert select(paths(("1", 0.5, 9), ("2", 0.5, 8), ("3", 0.5, 8)), "highest")[0] == 1


@pytest.mark.parametrize("rule", ["highest", "weighted", "majority"])
def test_nothing_to_choose_from(rule: str) -> None:
    assert select(paths((None, None, 3)), rule)[0] is None  # type: ignore[arg-type]


def test_highest_passes_over_paths_that_gave_no_answer_while_one_did() -> None:
    assert select(paths((None, 0.9, 5), ("7", 0.2, 9)), "highest") == (1, {"best_score": 0.2})
    assert select(paths((None, 0.9, 5), (None, 0.2, 9)), "highest") == (0, {"best_score": 0.9})
