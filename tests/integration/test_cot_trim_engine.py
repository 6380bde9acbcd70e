"""CoT trimming on the real engine with the embedded model: chains, probes, judge questions and
forced answers all run, nothing is left running in the engine, and usage adds up to what the
engine did."""

from __future__ import annotations

import dataclasses

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.usage import Usage
from ponder.strategies import CoTTrim, SamplingConfig
from ponder.strategies.cot_judge import ThoughtJudge
from ponder.strategies.cot_probe import ProbeExit

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def _engine_usage_since(engine: VllmBackend, before: Usage) -> Usage:
    now = engine.usage
    return Usage(**{
        f.name: getattr(now, f.name) - getattr(before, f.name) for f in dataclasses.fields(Usage)
    })


async def test_trimmed_chains_run_end_to_end_and_usage_adds_up(engine: VllmBackend) -> None:
    strategy = CoTTrim(
        n=3,
        sampling=SamplingConfig(max_tokens=96),
        answer_max_tokens=24,
        probe=ProbeExit(interval=8, window=2, max_tokens=8),
        judge=ThoughtJudge(),
    )
    before = dataclasses.replace(engine.usage)
    result = await asolve("What is 17 + 25?", strategy=strategy, backend=engine)
    done, usage, details = _engine_usage_since(engine, before), result.usage, result.details

    assert len(result.candidates) == 3 and not result.budget_exhausted
    assert all(c.text and c.num_tokens == len(c.token_ids) for c in result.candidates)
    assert set(details["ended_by"]) <= {
        "answered", "probe", "overthinking", "underthinking", "repetition", "thinking_limit",
        "unclosed",
    }
    # The ledger holds exactly what the engine did: judge requests are verifier calls there.
    assert usage.generated_tokens == done.generated_tokens
    assert usage.prompt_tokens == done.prompt_tokens
    assert usage.cancelled_tokens == done.cancelled_tokens
    assert usage.model_calls + usage.verifier_calls == done.model_calls
    assert usage.verifier_calls == details["judge_calls"]
    # Per chain: its request, its probes and its answer; plus one verdict token per question.
    assert sum(details["chain_tokens"]) + usage.verifier_calls == usage.generated_tokens
    assert 0 < usage.thinking_tokens <= sum(details["streamed_tokens"])
    for kept, streamed, ended_by in zip(
        details["kept_tokens"], details["streamed_tokens"], details["ended_by"]
    ):
        assert kept <= streamed
        assert (kept < streamed) or ended_by in ("answered", "unclosed", "thinking_limit")
    assert engine.engine.get_num_unfinished_requests() == 0
