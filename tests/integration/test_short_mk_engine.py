"""short-m@k on the real engine with the embedded model: the first m finishers vote, the
others are aborted in the engine, and usage counts every token."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.strategies import SamplingConfig, ShortMK

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_short_2_of_8_stops_the_rest_and_counts_their_tokens(engine: VllmBackend) -> None:
    result = await asolve(
        "What is 17 + 25?",
        strategy=ShortMK(k=8, m=2, sampling=SamplingConfig(max_tokens=256)),
        backend=engine,
    )
    details, usage = result.details, result.usage
    assert details["finished_first"] == 2
    assert sum(details["votes"].values()) <= 2
    assert len(result.candidates) + details["stopped"] == 8
    assert usage.cancelled_tokens > 0 or details["stopped"] == 0  # or all finished at once
    assert details["cancelled_tokens"] == usage.cancelled_tokens
    finished_tokens = sum(c.num_tokens for c in result.candidates)
    assert usage.generated_tokens == finished_tokens + usage.cancelled_tokens
    assert usage.model_calls == 1
    assert engine.engine.get_num_unfinished_requests() == 0
