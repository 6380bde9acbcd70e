"""solve / asolve on the real engine with the embedded model: answers, usage, budgets."""

from __future__ import annotations

import pytest

from ponder import Budget, asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.errors import BadRequestError
from ponder.strategies import BestOfN, SamplingConfig, SelfConsistency

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

QUESTION = "What is 17 + 25?"


async def test_self_consistency_answers_with_honest_usage(engine: VllmBackend) -> None:
    before = engine.usage.generated_tokens
    result = await asolve(
        QUESTION, strategy=SelfConsistency(n=6, sampling=SamplingConfig(max_tokens=96)), backend=engine
    )
    assert len(result.candidates) == 6
    assert result.answer is not None
    assert result.answer == result.candidates[result.selected_index].answer
    assert sum(result.details["votes"].values()) == sum(c.answer is not None for c in result.candidates)
    usage = result.usage
    assert usage.model_calls == 1
    assert usage.generated_tokens == sum(c.num_tokens for c in result.candidates)
    assert usage.generated_tokens == engine.usage.generated_tokens - before
    assert usage.prompt_tokens == len(engine.render_chat([
        {"role": "system", "content": SelfConsistency().system_prompt}, {"role": "user", "content": QUESTION},
    ]))
    assert usage.cancelled_tokens == 0
    assert usage.wall_seconds > 0
    assert not result.budget_exhausted


async def test_best_of_n_scores_every_candidate_by_self_certainty(engine: VllmBackend) -> None:
    result = await asolve(
        QUESTION, strategy=BestOfN(n=4, sampling=SamplingConfig(max_tokens=64)), backend=engine
    )
    scores = [c.score for c in result.candidates]
    assert all(s is not None and 0.0 < s <= 1.0 for s in scores)
    assert result.candidates[result.selected_index].score == max(scores)


async def test_a_token_budget_cuts_the_run_short(engine: VllmBackend) -> None:
    result = await asolve(
        QUESTION,
        strategy=SelfConsistency(n=8, sampling=SamplingConfig(max_tokens=64)),
        backend=engine,
        budget=Budget(generated_tokens=100),
    )
    # one 64-token chain fits at a time; eight would need seven chains of ~5 tokens
    assert result.usage.generated_tokens <= 100
    assert 1 <= len(result.candidates) < 8
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"


async def test_a_time_budget_aborts_running_chains(engine: VllmBackend) -> None:
    result = await asolve(
        "Write a long essay about the history of numbers.",
        strategy=SelfConsistency(n=4, sampling=SamplingConfig(max_tokens=1500)),
        backend=engine,
        budget=Budget(seconds=2.0),
    )
    assert result.budget_exhausted and result.exhausted_by == "seconds"
    assert result.usage.cancelled_tokens > 0
    assert result.usage.wall_seconds < 10
    assert engine.engine.get_num_unfinished_requests() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "majority"}, "unknown strategy"),
        ({"budget": {"generated_tokens": 0}}, "budget.generated_tokens"),
        ({"budget": {"seconds": -1}}, "budget.seconds"),
        ({"strategy": {"name": "self_consistency", "n": 2, "top_k": 3}}, "strategy.top_k: unknown parameter"),
    ],
    ids=["unknown-strategy", "zero-budget", "negative-seconds", "unknown-parameter"],
)
async def test_bad_requests_fail_clearly_and_the_engine_serves_on(
    engine: VllmBackend, kwargs: dict, message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        await asolve(QUESTION, backend=engine, **kwargs)
    with pytest.raises(BadRequestError, match="problem.prompt: must not be empty"):
        await asolve("   ", backend=engine)
    result = await asolve(QUESTION, strategy={"name": "self_consistency", "n": 1}, backend=engine)
    assert len(result.candidates) == 1
