"""LLM judges on the embedded model: valid scores for real steps, and how often a 135M judge
ranks a correct answer above a wrong one (printed, not asserted: the model is weak)."""

from __future__ import annotations

import asyncio
import random

import pytest

from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score
from ponder.verifiers.judge import LLMJudge, StepJudge
from ponder.verifiers.judge_scoring import JudgeMode

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CASES = [  # question, correct answer, wrong answer
    ("What is 17 + 25?", "42", "32"),
    ("What is 9 times 7?", "63", "56"),
    ("What is 100 minus 37?", "63", "73"),
    ("What is 48 divided by 6?", "8", "6"),
    ("What is 13 + 29?", "42", "52"),
    ("What is 11 squared?", "121", "111"),
    ("What is half of 84?", "42", "48"),
    ("What is 250 + 375?", "625", "525"),
    ("What is 6 times 8?", "48", "42"),
    ("What is 15 + 27?", "42", "41"),
]


def _context(engine: VllmBackend) -> Run:
    return Run(engine, Ledger(Budget()), random.Random(0))


def _candidates(*texts: str) -> list[Candidate]:
    return [
        Candidate(index=i, text=t, num_tokens=0, finish_reason="stop") for i, t in enumerate(texts)
    ]


def _valid(score: Score) -> bool:
    return (score.value is not None and 0.0 <= score.value <= 1.0) or bool(score.reason)


async def test_every_real_step_gets_a_probability(engine: VllmBackend) -> None:
    paths = _candidates(
        "17 + 25: first 17 + 20 = 37.\n\nThen 37 + 5 = 42.\n\nThe answer is 42.",
        "17 + 25: first 17 + 20 = 47.\n\nThen 47 + 5 = 52.\n\nThe answer is 52.",
    )
    ctx = _context(engine)
    scores = await StepJudge(aggregation="min").score(Problem(prompt=CASES[0][0]), paths, ctx)
    for score in scores:
        assert score.steps is not None and len(score.steps) == 3
        assert all(step is not None and 0.0 <= step <= 1.0 for step in score.steps)
        assert score.value == min(score.steps)
    assert ctx.ledger.spent.generated_tokens == 6
    assert ctx.ledger.spent.model_calls == 0


@pytest.mark.parametrize("mode", ["yes_no", "digit"])
async def test_how_often_the_judge_ranks_the_correct_answer_higher(
    engine: VllmBackend, mode: JudgeMode
) -> None:
    judge, ctx = LLMJudge(mode=mode), _context(engine)
    scored = await asyncio.gather(
        *(
            judge.score(
                Problem(prompt=question),
                _candidates(f"The answer is {good}.", f"The answer is {bad}."),
                ctx,
            )
            for question, good, bad in CASES
        )
    )
    assert all(_valid(score) for pair in scored for score in pair)
    pairs = [(good.value, bad.value) for good, bad in scored]
    comparable = [(good, bad) for good, bad in pairs if good is not None and bad is not None]
    rate = sum(good > bad for good, bad in comparable) / len(comparable) if comparable else 0.0
    print(
        f"\n{mode} judge: correct ranked above wrong in {rate:.0%} of {len(comparable)} "
        f"comparable pairs ({len(CASES)} problems)"
    )
    assert 0.0 <= rate <= 1.0
    if mode == "digit":
        # 8 of 10 in every run so far (the logprobs barely vary); it takes 4 flipped pairs, with
        # margins of 0.02-0.10, to fall below half. yes_no sits near chance and is not asserted.
        assert rate >= 0.5
    assert ctx.ledger.spent.verifier_calls == 2 * len(CASES)
    assert ctx.ledger.spent.model_calls == 0


async def test_a_judge_named_by_model_reuses_the_process_engine(engine: VllmBackend) -> None:
    assert await engines.backend("embedded") is engine
    judge = LLMJudge(backend="embedded")
    ctx = _context(engine)
    (score,) = await judge.score(Problem(prompt="What is 2 + 2?"), _candidates("4"), ctx)
    assert _valid(score)
