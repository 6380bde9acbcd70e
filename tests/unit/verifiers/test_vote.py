"""Majority and weighted votes, with their tie-break rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.errors import BadRequestError
from ponder.verifiers.vote import majority_vote

WINNER_CASES = [
    ("plain-majority", ["1", "2", "2"], [5, 5, 5], None, 1),
    ("tie-to-shortest-chain", ["1", "2", "1", "2"], [9, 3, 9, 8], None, 1),
    ("tie-to-earliest-group", ["1", "2", "2", "1"], [4, 4, 4, 4], None, 0),
    ("equivalents-vote-together", ["1", "42", "2", "42.0"], [1, 9, 1, 3], None, 3),
    ("none-does-not-vote", ["1", None, None], [5, 1, 1], None, 0),
    ("all-none", [None, None], [1, 1], None, None),
    ("nothing", [], [], None, None),
    ("weight-overturns-count", ["1", "2", "2"], [5, 5, 5], [0.9, 0.3, 0.4], 0),
    ("weights-are-summed", ["1", "2", "2"], [5, 5, 5], [0.5, 0.3, 0.4], 1),
    ("weighted-tie-to-shortest", ["1", "2"], [7, 6], [0.5, 0.5], 1),
]


@pytest.mark.parametrize(
    ("answers", "lengths", "weights", "winner"),
    [c[1:] for c in WINNER_CASES],
    ids=[c[0] for c in WINNER_CASES],
)
def test_winner(
    answers: list[str | None], lengths: list[int], weights: list[float] | None, winner: int | None
) -> None:
    vote = majority_vote(answers, lengths, weights)
    assert vote.winner_index == winner
    assert vote.answer == (None if winner is None else answers[winner])


def test_counts_and_groups_are_reported() -> None:
    vote = majority_vote(["42.0", "41", "42", None], [5, 1, 2, 1])
    assert vote.counts == {"42": 2, "41": 1}
    assert vote.groups == [[0, 2], [1]]
    assert (vote.winner_index, vote.answer) == (2, "42")


@pytest.mark.parametrize(
    ("lengths", "weights", "message"),
    [([1], None, "lengths must have one entry per answer"),
     ([1, 1], [1.0], "weights must have one entry per answer"),
     ([1, 1], [1.0, float("nan")], r"weights\[1\] must be a finite number")],
    ids=["short-lengths", "short-weights", "nan-weight"],
)
def test_bad_inputs_name_the_field(
    lengths: list[int], weights: list[float] | None, message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        majority_vote(["1", "2"], lengths, weights)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "1.0", "2", "x+1", "1+x", None]),
            st.integers(1, 50),
            st.floats(0, 1),
        ),
        max_size=12,
    )
)
def test_the_winning_group_has_the_largest_weight(
    rows: list[tuple[str | None, int, float]],
) -> None:
    answers = [a for a, _, _ in rows]
    lengths = [n for _, n, _ in rows]
    weights = [w for _, _, w in rows]
    vote = majority_vote(answers, lengths, weights)
    if vote.winner_index is None:
        assert all(a is None for a in answers)
        return
    totals = [sum(weights[i] for i in group) for group in vote.groups]
    winning = next(g for g, group in enumerate(vote.groups) if vote.winner_index in group)
    assert totals[winning] == max(totals)
    assert lengths[vote.winner_index] == min(lengths[i] for i in vote.groups[winning])
