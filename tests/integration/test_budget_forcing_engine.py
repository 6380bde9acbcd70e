"""Budget forcing on the real engine with the embedded model, both ways: inside the engine
(one request, the logits processor forcing) and by stop-and-resubmit. The limits hold, and
usage adds up: every generated token is thinking or answer."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.result import Result
from ponder.strategies import BudgetForcing

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MIN, MAX, ANSWER = 48, 96, 16


def strategy(mode: str, n: int) -> BudgetForcing:
    return BudgetForcing(
        min_thinking_tokens=MIN, max_thinking_tokens=MAX, max_answer_tokens=ANSWER,
        max_continuations=16, n=n, mode=mode,
    )


def assert_limits_and_usage(result: Result, engine: VllmBackend, n: int) -> None:
    answer_prompt = engine.encode("\nAnswer:")
    assert len(result.candidates) == n and result.answer is not None
    for candidate, chain in zip(result.candidates, result.details["chains"]):
        assert MIN <= candidate.thinking_tokens <= MAX + 1  # the forced "\n" is thinking
        assert candidate.num_tokens - candidate.thinking_tokens <= len(answer_prompt) + ANSWER
        if chain["forced_close"]:
            assert candidate.token_ids[MAX : MAX + len(answer_prompt)] == answer_prompt
        spent = candidate.num_tokens - chain["injected_tokens"] + chain["dropped_tokens"]
        assert spent == chain["thinking_tokens"] + chain["answer_tokens"]
    chains, usage = result.details["chains"], result.usage
    assert usage.generated_tokens == sum(c["thinking_tokens"] + c["answer_tokens"] for c in chains)
    assert usage.thinking_tokens == sum(c["thinking_tokens"] for c in chains)
    assert engine.engine.get_num_unfinished_requests() == 0


async def test_in_engine_forcing_holds_the_limits_in_one_request(engine: VllmBackend) -> None:
    result = await asolve("What is 17 + 25?", strategy=strategy("auto", 4), backend=engine)
    assert result.details["mode"] == "in_engine"  # the engine registers the processor on CPU
    assert result.usage.model_calls == 1
    assert result.details["forced_continuations"] is None  # not observable from outside
    assert all(c["injected_tokens"] == c["dropped_tokens"] == 0 for c in result.details["chains"])
    assert_limits_and_usage(result, engine, 4)


async def test_round_trip_forcing_holds_the_same_limits(engine: VllmBackend) -> None:
    result = await asolve("What is 17 + 25?", strategy=strategy("round_trip", 2), backend=engine)
    assert result.details["mode"] == "round_trip"
    chains = result.details["chains"]
    assert result.usage.model_calls == sum(c["model_calls"] for c in chains)
    closed = [c for c in chains if c["answer_tokens"]]  # thinking, then the answer
    assert all(c["model_calls"] >= 2 for c in closed) and result.usage.model_calls >= 2
    assert_limits_and_usage(result, engine, 2)
