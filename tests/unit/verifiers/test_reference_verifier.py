"""The reference-answer verifier inside best-of-N: the oracle picks a correct chain."""

from __future__ import annotations

import random

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.runtime import Run
from ponder.strategies import BestOfN


def _context(script: list[str]) -> Run:
    return Run(ScriptedBackend.from_script(script), Ledger(Budget()), random.Random(0))


async def test_best_of_n_with_the_reference_picks_a_correct_chain() -> None:
    problem = Problem(prompt="What is 6 times 7?", reference="42")
    ctx = _context(["Answer: 41", "no idea", "Answer: 42.0", "Answer: 43"])
    result = await BestOfN(n=4, verifier="reference_answer").run(problem, ctx)
    assert result.answer == "42.0"
    assert [c.score for c in result.candidates] == [0.0, 0.0, 1.0, 0.0]
    assert result.candidates[1].score_reason == "no answer found in the chain"
    assert "differs from the reference '42'" in result.candidates[0].score_reason
    assert result.usage.verifier_calls == 0


async def test_without_a_reference_nothing_is_scored() -> None:
    ctx = _context(["Answer: 1", "Answer: 2"])
    result = await BestOfN(n=2, verifier="reference_answer").run(Problem(prompt="q"), ctx)
    assert result.answer is None
    assert {c.score_reason for c in result.candidates} == {"problem has no reference answer"}
