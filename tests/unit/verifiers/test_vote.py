"""Majority and weighted votes, with their tie-break rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.verifiers.certainty import certainty_score, self_certainty
from ponder.verifiers.vote import majority_vote


@pytest.mark.parametrize(
    ("answers", "lengths", "weights", "winner"),
    [
        (["1", "2", "2"], [5, 5, 5], None, 1),
        (["1", "2", "1", "2"], [9, 3, 9, 8], None, 1),
        (["1", "2", "2", "1"], [4, 4, 4, 4], None, 0),
        (["1", "2", "2.0"], [1, 9, 3], None, 2),
        (["1", None, None], [5, 1, 1], None, 0),
        ([None, None], [1, 1], None, None),
        (["1", "2", "2"], [5, 5, 5], [0.9, 0.3, 0.4], 0),
        (["1", "2", "2"], [5, 5, 5], [0.5, 0.3, 0.4], 1),
    ],
    ids=["majority", "tie-to-shortest", "tie-to-earliest", "equivalents-together-shortest-member",
         "none-does-not-vote", "no-votes", "weight-beats-count", "weights-summed"],
)
def test_winner(answers: list, lengths: list[int], weights: list[float] | None, winner: int | None) -> None:
    assert majority_vote(answers, lengths, weights).winner_index == winner


def test_counts_are_keyed_by_first_seen_form() -> None:
    vote = majority_vote(["42", "41", "42.0"], [1, 1, 1])
    assert vote.counts == {"42": 2, "41": 1}
    assert vote.groups == [[0, 2], [1]]


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per candidate"):
        majority_vote(["1", "2"], [1])


@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3", None]), st.integers(1, 50),
                          st.floats(0, 1)), min_size=1, max_size=12))
def test_the_winner_group_has_the_largest_weight(rows: list) -> None:
    answers, lengths, weights = (list(column) for column in zip(*rows))
    vote = majority_vote(answers, lengths, weights)
    if vote.winner_index is None:
        assert all(a is None for a in answers)
        return
    totals = {g[0]: sum(weights[i] for i in g) for g in vote.groups}
    winning = next(g for g in vote.groups if vote.winner_index in g)
    assert totals[winning[0]] == max(totals.values())


def test_self_certainty_is_the_mean_logprob() -> None:
    assert self_certainty([-1.0, -3.0]) == -2.0
    assert certainty_score([0.0, 0.0]) == 1.0
    assert self_certainty([]) is None and certainty_score(None) is None
