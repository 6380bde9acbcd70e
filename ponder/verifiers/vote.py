"""Majority vote over extracted answers, optionally weighted by scores.

One function serves self-consistency (every chain one vote) and weighted best-of-N (every
chain its score). Ties are broken deterministically: the group holding the shortest chain
wins, then the group whose shortest chain came first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ponder.verifiers.equivalence import group_answers


@dataclass(frozen=True)
class VoteResult:
    winner_index: int | None
    """The winning group's shortest chain (earliest among equals); None if nobody voted."""
    answer: str | None
    counts: dict[str, float] = field(default_factory=dict)
    """Votes (or summed weights) per answer, keyed by each group's first-seen answer text."""
    groups: list[list[int]] = field(default_factory=list)


def majority_vote(
    answers: Sequence[str | None],
    lengths: Sequence[int],
    weights: Sequence[float] | None = None,
) -> VoteResult:
    """Group equivalent answers and pick the group with the most votes (or weight)."""
    if len(lengths) != len(answers) or (weights is not None and len(weights) != len(answers)):
        raise ValueError("answers, lengths and weights must have one entry per candidate")
    votes = weights if weights is not None else [1.0] * len(answers)
    groups = group_answers(answers)
    if not groups:
        return VoteResult(winner_index=None, answer=None)

    def representative(group: list[int]) -> int:
        return min(group, key=lambda i: (lengths[i], i))

    def rank(group: list[int]) -> tuple[float, int, int]:
        shortest = representative(group)
        return (-sum(votes[i] for i in group), lengths[shortest], shortest)

    winner = min(groups, key=rank)
    index = representative(winner)
    counts = {str(answers[g[0]]): sum(votes[i] for i in g) for g in groups}
    return VoteResult(winner_index=index, answer=answers[index], counts=counts, groups=groups)
