"""Strategy 'auto' through the Python API on the real engine with the shipped profile of the
embedded model: it answers, says what it chose, and its usage counts the probe's tokens."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.strategies.profile import load_profile

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_auto_answers_with_the_shipped_profile_and_counts_the_probe(engine: VllmBackend) -> None:
    # 2000 tokens: every profiled point fits after the probe (at most 4 x 128 tokens)
    result = await asolve("What is 2 + 3?", strategy="auto", backend=engine,
                          budget={"generated_tokens": 2000})
    auto = result.details["auto"]
    assert result.answer is not None and result.strategy == "auto"
    assert auto["strategy"] in [p.strategy for p in load_profile().points] and auto["fits"]
    assert len(result.candidates) == auto["strategy"]["n"] and len(auto["probe_answers"]) == 4
    chosen = sum(c.num_tokens for c in result.candidates)
    assert result.usage.generated_tokens > chosen  # the probe's chains are in the usage too
    assert result.usage.model_calls >= 2
