"""Choosing the final answer among a search's finished paths.

``highest``: the path with the highest score (ties: the shorter path, then the earlier) among
those that gave an answer (all, when none did).
``majority``: the most frequent answer, scores ignored (self-consistency over the paths).
``weighted``: the answer with the largest sum of scores (weighted best-of-N), which rewards
answers that many good paths reach. Equivalent answers ("12", "12.0") count together, and
vote ties never fall to chance (see ``majority_vote``). Unscored paths take no part in
``highest`` and ``weighted``; paths with no extracted answer take no part in the votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ponder.core.result import Candidate
from ponder.verifiers.vote import majority_vote

SelectionRule = Literal["highest", "majority", "weighted"]


def select(
    candidates: Sequence[Candidate], rule: SelectionRule
) -> tuple[int | None, dict[str, Any]]:
    """(the chosen candidate's ``index`` or None when none qualifies, evidence for details)."""
    if rule == "highest":
        return _highest(candidates)
    if rule == "majority":
        voters, weights = list(candidates), None
    else:
        voters = [c for c in candidates if c.score is not None]
        weights = [c.score for c in voters]
    vote = majority_vote([c.answer for c in voters], [c.num_tokens for c in voters], weights)
    selected = None if vote.winner_index is None else voters[vote.winner_index].index
    return selected, {"votes": vote.counts}


def answered_first(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates that gave an answer, or all of them when none did: a path that ended
    without one (the model stopped early, a limit cut it) is no answer to return while
    another path has one, however well it was scored."""
    answered = [c for c in candidates if c.answer is not None]
    return answered or list(candidates)


def _highest(candidates: Sequence[Candidate]) -> tuple[int | None, dict[str, Any]]:
    scored = answered_first([c for c in candidates if c.score is not None])
    if not scored:
        return None, {}
    best = min(scored, key=lambda c: (-c.score, c.num_tokens, c.index))  # type: ignore[operator]
    return best.index, {"best_score": best.score}
