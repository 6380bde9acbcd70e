"""Final answer selection over candidates: argmax, majority, weighted vote, sample by weight."""

from __future__ import annotations

import random

import pytest

from ponder.core.result import Candidate
from ponder.verifiers.selection import select


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
        ("argmax", 1, {"best_score": 0.95}),
        ("weighted", 2, {"votes": {"12": 1.0, "13": 0.95, "11": 0.1}}),  # the shortest "12" path
        ("majority", 3, {"votes": {"12": 2.0, "13": 1.0, "11": 3.0}}),  # unscored paths vote too
    ],
)
def test_rules(rule: str, selected: int, evidence: dict) -> None:
    assert select(CASES, rule) == (selected, evidence)  # type: ignore[arg-type]


def test_argmax_ties_go_to_the_shorter_then_the_earlier_path() -> None:
    assert select(paths(("1", 0.5, 9), ("2", 0.5, 8), ("3", 0.5, 8)), "argmax")[0] == 1


@pytest.mark.parametrize("rule", ["argmax", "weighted", "majority"])
def test_nothing_to_choose_from(rule: str) -> None:
    assert select(paths((None, None, 3)), rule)[0] is None  # type: ignore[arg-type]


def test_argmax_passes_over_paths_that_gave_no_answer_while_one_did() -> None:
    assert select(paths((None, 0.9, 5), ("7", 0.2, 9)), "argmax") == (1, {"best_score": 0.2})
    assert select(paths((None, 0.9, 5), (None, 0.2, 9)), "argmax") == (0, {"best_score": 0.9})


def test_weights_given_replace_the_scores() -> None:
    candidates = paths(("1", 0.9, 5), ("2", 0.1, 5), ("2", None, 5))
    assert select(candidates, "argmax", weights=[0.1, 0.5, None]) == (1, {"best_score": 0.5})
    assert select(candidates, "weighted", weights=[0.5, 0.3, 0.3])[0] == 1


def test_sample_draws_by_weight_from_the_stream_among_paths_that_gave_an_answer() -> None:
    candidates = paths((None, 0.9, 5), ("7", 0.3, 9), ("8", 0.1, 9))
    picks = [select(candidates, "sample", rng=random.Random(seed))[0] for seed in range(400)]
    assert 0 not in picks
    assert picks.count(1) / len(picks) == pytest.approx(0.75, abs=0.08)
    assert picks[:20] == [select(candidates, "sample", rng=random.Random(s))[0] for s in range(20)]


def test_sample_needs_the_runs_stream() -> None:
    with pytest.raises(ValueError, match="pass rng"):
        select(paths(("7", 0.3, 9)), "sample")
