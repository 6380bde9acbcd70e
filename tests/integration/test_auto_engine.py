"""Strategy 'auto' through the Python API on the real engine with the shipped profile of the
embedded model: it answers, says what it chose, and its usage counts the probe's tokens; a
chosen self-consistency over programs votes with the probe's programs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
    probe, n = len(auto["probe_answers"]), auto["strategy"]["n"]
    assert probe == 4 and result.usage.model_calls >= 1
    chosen = sum(c.num_tokens for c in result.candidates)
    if "earlier_chains" in result.details:  # a self-consistency of the probe's format
        assert len(result.candidates) == max(n, probe)
        assert result.usage.generated_tokens == chosen  # the probe's chains are among them
    else:
        assert len(result.candidates) == n
        assert result.usage.generated_tokens > chosen  # the probe's chains are in the usage too


async def test_a_chosen_self_consistency_over_programs_counts_the_probes_programs(
    engine: VllmBackend, tmp_path: Path,
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"probe_format": "program", "points": [{
        "strategy": {"name": "self_consistency", "n": 6, "format": "program"},
        "generated_tokens": 150, "accuracy": 0.8}]}))
    result = await asolve("What is 17 + 26?", strategy={"name": "auto", "profile": str(path)},
                          backend=engine)
    auto = result.details["auto"]
    assert auto["probe_format"] == "program" and auto["expected_tokens"] == 50  # 2 of 6 chains
    assert result.details["earlier_chains"] == 4 and len(result.candidates) == 6
    assert all(c.program is not None for c in result.candidates)  # all six are programs, run
    assert result.usage.generated_tokens == sum(c.num_tokens for c in result.candidates)
    assert result.usage.model_calls == 2  # the probe's 4, then the 2 it lacked
