"""DeepConf on the real engine with the embedded model: confidences from the engine's top
logprobs, traces stopped in the engine when their group confidence falls below the warm-up
threshold, and usage that adds up to every token, the cancelled ones included."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.strategies import DeepConf, SamplingConfig
from ponder.verifiers.confidence import ConfidenceSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SAMPLING = SamplingConfig(max_tokens=160)


async def test_online_stops_low_confidence_traces_in_the_engine(engine: VllmBackend) -> None:
    # keep=0.1: the threshold is the warm-up's 90th percentile, which a later trace dips below
    # once 16 tokens are judged about 5 times in 8 (measured: 2.5 of 4 later traces stopped on
    # average over 12 runs, one run stopping none); 12 later traces all staying above is then
    # rarer than 1 in 10,000.
    strategy = DeepConf(
        n=16, warmup=4, keep=0.1, consensus=None, sampling=SAMPLING,
        confidence=ConfidenceSettings(window=16),
    )
    result = await asolve("What is 17 + 25?", strategy=strategy, backend=engine)
    details, usage = result.details, result.usage
    assert len(result.candidates) == 16
    assert details["threshold"] > 0.0
    stopped = [c for c in result.candidates if c.finish_reason == "aborted"]
    assert details["stopped_low_confidence"] == len(stopped) >= 1
    assert all(c.num_tokens >= 16 for c in stopped)  # only full groups are judged
    assert usage.cancelled_tokens == sum(c.num_tokens for c in stopped)
    assert usage.generated_tokens == sum(c.num_tokens for c in result.candidates)
    assert usage.model_calls == 13  # the warm-up request, then one per later trace
    assert set(details["voters"]).isdisjoint(c.index for c in stopped)
    assert engine.engine.get_num_unfinished_requests() == 0


async def test_offline_weights_the_vote_by_engine_confidence(engine: VllmBackend) -> None:
    strategy = DeepConf(n=8, mode="offline", keep=0.5, sampling=SAMPLING)
    result = await asolve("What is 6 times 7?", strategy=strategy, backend=engine)
    scores = [c.score for c in result.candidates]
    assert all(s is not None and s > 0.0 for s in scores)  # -mean of top-5 logprobs
    kept = [c for c in result.candidates if c.index in result.details["voters"]]
    assert all(c.score >= result.details["threshold"] for c in kept)
    if not result.details.get("fallback"):  # some kept trace gave an answer
        weights = sum(result.details["votes"].values())
        assert weights == pytest.approx(sum(c.score for c in kept))
    assert result.usage.model_calls == 1 and result.usage.cancelled_tokens == 0
