"""Choosing the final answer among candidates: one set of rule names for every strategy.

``argmax``: the candidate with the highest weight (ties: the shorter, then the earlier) among
those that gave an answer (all, when none did).
``majority``: the most frequent answer, weights ignored (self-consistency).
``weighted``: the answer with the largest sum of weights (weighted best-of-N), which rewards
answers that many good candidates reach.
``sample``: a candidate drawn by weight from the run's random stream, among those that gave an
answer (all, when none did); only strategies whose weights are a distribution offer it
(particle filtering).

A candidate's weight is its score unless the strategy passes weights of its own (particle
filtering: the particle's share of the population). Candidates without a weight take no part
in ``argmax``, ``weighted`` and ``sample``; candidates with no answer take no part in the votes.
Equivalent answers ("12", "12.0") count together, and vote ties never fall to chance (see
``majority_vote``). Where the answers are free-form texts, which no two candidates share
word for word, ``ponder.verifiers.free_form`` takes the votes by its rules (mbr, usc).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from ponder.core.result import Candidate
from ponder.verifiers.vote import majority_vote

SelectionRule = Literal["argmax", "majority", "weighted"]
"""The rules every strategy that chooses among weighted candidates offers."""
SelectionRuleOrSample = Literal["argmax", "majority", "weighted", "sample"]
"""The rules of a strategy whose weights are a distribution to draw from."""


def select(
    candidates: Sequence[Candidate],
    rule: SelectionRuleOrSample,
    *,
    weights: Sequence[float | None] | None = None,
    rng: random.Random | None = None,
) -> tuple[int | None, dict[str, Any]]:
    """(the chosen candidate's ``index`` or None when none qualifies, evidence for details).
    ``weights``: one per candidate (None: no weight), the candidates' scores when not given;
    ``rng``: the run's random stream, which ``sample`` draws from."""
    if rule == "majority":
        return _vote(list(candidates), None)
    given = [c.score for c in candidates] if weights is None else list(weights)
    weighed = [(c, w) for c, w in zip(candidates, given, strict=True) if w is not None]
    if rule == "weighted":
        return _vote([c for c, _ in weighed], [w for _, w in weighed])
    weight = {id(c): w for c, w in weighed}
    pool = answered_first([c for c, _ in weighed])
    if not pool:
        return None, {}
    if rule == "argmax":
        best = min(pool, key=lambda c: (-weight[id(c)], c.num_tokens, c.index))
        return best.index, {"best_score": weight[id(best)]}
    if rng is None:
        raise ValueError("selection 'sample' draws from the run's random stream: pass rng")
    return rng.choices(pool, weights=[weight[id(c)] for c in pool])[0].index, {}


def answered_first(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates that gave an answer, or all of them when none did: a path that ended
    without one (the model stopped early, a limit cut it) is no answer to return while
    another path has one, however well it was scored."""
    answered = [c for c in candidates if c.answer is not None]
    return answered or list(candidates)


def _vote(
    voters: list[Candidate], weights: list[float] | None
) -> tuple[int | None, dict[str, Any]]:
    vote = majority_vote([c.answer for c in voters], [c.num_tokens for c in voters], weights)
    selected = None if vote.winner_index is None else voters[vote.winner_index].index
    return selected, {"votes": vote.counts}
