"""What every verifier gets from the base class: caching within a run and budget charging."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier

PROBLEM = Problem(prompt="q")


ASKED: list[list[str]] = []
"""What CountingVerifier was asked to score, batch by batch."""


class CountingVerifier(Verifier):
    """Scores by text length and records each batch it scores in ``ASKED``."""

    async def _score(self, problem: Problem, candidates: Sequence[Candidate], ctx: Run) -> list[Score]:
        ASKED.append([c.text for c in candidates])
        return [Score(len(c.text) / 10) for c in candidates]


@pytest.fixture(autouse=True)
def _fresh_record() -> None:
    ASKED.clear()


def _context(budget: Budget | None = None) -> Run:
    return Run(ScriptedBackend.from_script([]), Ledger(budget or Budget()), random.Random(0))


def _candidates(*texts: str) -> list[Candidate]:
    return [Candidate(index=i, text=t, num_tokens=len(t), finish_reason="stop") for i, t in enumerate(texts)]


async def test_the_same_text_is_scored_once_per_run() -> None:
    verifier, ctx = CountingVerifier(), _context()
    first = await verifier.score(PROBLEM, _candidates("ab", "abc", "ab"), ctx)
    second = await verifier.score(PROBLEM, _candidates("abc", "abcd"), ctx)
    assert ASKED == [["ab", "abc"], ["abcd"]]
    assert [s.value for s in first] == [0.2, 0.3, 0.2]
    assert [s.value for s in second] == [0.3, 0.4]
    assert ctx.ledger.spent.verifier_calls == 3


async def test_a_new_run_scores_again() -> None:
    verifier = CountingVerifier()
    await verifier.score(PROBLEM, _candidates("ab"), _context())
    await verifier.score(PROBLEM, _candidates("ab"), _context())
    assert ASKED == [["ab"], ["ab"]]


async def test_without_verifier_calls_left_candidates_are_unscored_with_the_reason() -> None:
    verifier, ctx = CountingVerifier(), _context(Budget(verifier_calls=2))
    scores = await verifier.score(PROBLEM, _candidates("a", "b", "c"), ctx)
    assert ASKED == []
    assert all(s.value is None and "verifier_calls" in s.reason for s in scores)
    assert ctx.ledger.spent.verifier_calls == 0
