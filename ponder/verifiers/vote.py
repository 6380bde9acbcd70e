"""Majority vote over extracted answers, optionally weighted.

One function serves self-consistency (every chain one vote) and weighted best-of-N (every
chain its score). Ties never fall to chance: the group holding the shortest chain wins (a
short chain that reaches the same answer is the cheaper, usually cleaner, argument), then
the group that appeared first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ponder.errors import BadRequestError
from ponder.verifiers.equivalence import group_answers


@dataclass(frozen=True)
class VoteResult:
    """The outcome of a vote, with the evidence for it."""

    winner_index: int | None
    """The winning group's shortest chain (earliest among equals); None if nobody voted."""
    answer: str | None
    """That chain's answer."""
    counts: dict[str, float] = field(default_factory=dict)
    """Votes (or summed weights) per group, keyed by the answer of its shortest chain."""
    groups: list[list[int]] = field(default_factory=list)
    """Indices of equivalent answers, in order of first appearance; None answers are in none."""


def majority_vote(
    answers: Sequence[str | None],
    lengths: Sequence[int],
    weights: Sequence[float] | None = None,
) -> VoteResult:
    """Group equivalent answers; the group with the largest total weight (one per candidate
    unless ``weights`` are given) wins. ``lengths`` are the chains' token counts, used to
    break ties and to pick the group's representative. A None answer does not vote."""
    _check_inputs(answers, lengths, weights)
    votes = [1.0] * len(answers) if weights is None else [float(w) for w in weights]
    groups = group_answers(answers)
    if not groups:
        return VoteResult(winner_index=None, answer=None)
    shortest = [min(group, key=lambda i: (lengths[i], i)) for group in groups]
    totals = [sum(votes[i] for i in group) for group in groups]
    winner = min(range(len(groups)), key=lambda g: (-totals[g], lengths[shortest[g]], groups[g][0]))
    index = shortest[winner]
    return VoteResult(
        winner_index=index,
        answer=answers[index],
        counts={str(answers[rep]): total for rep, total in zip(shortest, totals)},
        groups=groups,
    )


def _check_inputs(
    answers: Sequence[str | None], lengths: Sequence[int], weights: Sequence[float] | None
) -> None:
    if len(lengths) != len(answers):
        raise BadRequestError(
            f"lengths must have one entry per answer ({len(answers)}), got {len(lengths)}"
        )
    if weights is None:
        return
    if len(weights) != len(answers):
        raise BadRequestError(
            f"weights must have one entry per answer ({len(answers)}), got {len(weights)}"
        )
    for i, weight in enumerate(weights):
        if not math.isfinite(weight):
            raise BadRequestError(f"weights[{i}] must be a finite number, got {weight}")
