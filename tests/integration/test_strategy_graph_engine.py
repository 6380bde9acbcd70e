"""Composed strategy graphs on the real engine with the embedded model: self-consistency
over short-m@k with usage adding up and the budget holding, beam search with speculative
steps, and ``ponder graph`` on a composed config (no engine)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.budgets import Budget
from ponder.config import compose

pytestmark = pytest.mark.integration
on_engine = pytest.mark.asyncio(loop_scope="session")


def _config(name: str, *overrides: str) -> dict:
    return compose([f"strategy={name}", *overrides])["strategy"]


@on_engine
async def test_self_consistency_over_short_mk_pools_the_runs_winners(engine: VllmBackend) -> None:
    strategy = _config("sc_over_short_mk", "strategy.sampler.sampling.max_tokens=96")
    result = await asolve("What is 17 + 25?", strategy=strategy, backend=engine)
    runs = result.details["sampler_runs"]
    assert len(runs) == 4
    assert len(result.candidates) == sum(run["selected_index"] is not None for run in runs)
    assert [c.answer for c in result.candidates] == [r["answer"] for r in runs if r["selected_index"] is not None]
    usage = result.usage
    # Every run is one request (k samples); the parent spends nothing of its own.
    assert usage.model_calls == 4
    assert usage.generated_tokens == sum(run["generated_tokens"] for run in runs)
    assert usage.generated_tokens > usage.cancelled_tokens >= 0
    assert not result.budget_exhausted
    assert engine.engine.get_num_unfinished_requests() == 0


@on_engine
async def test_the_budget_holds_across_the_sampler_runs(engine: VllmBackend) -> None:
    strategy = _config("sc_over_short_mk", "strategy.sampler.sampling.max_tokens=96")
    result = await asolve(
        "What is 6 times 7?", strategy=strategy, backend=engine,
        budget=Budget(generated_tokens=500),
    )
    assert result.usage.generated_tokens <= 500
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert engine.engine.get_num_unfinished_requests() == 0


@on_engine
async def test_beam_search_with_speculative_steps(engine: VllmBackend) -> None:
    strategy = _config(
        "beam_spec_reason", "strategy.n=2", "strategy.max_steps=2",
        "strategy.step.max_step_tokens=32", "strategy.sampling.max_tokens=96",
    )
    result = await asolve("What is 12 + 30?", strategy=strategy, backend=engine)
    tree = result.tree
    steps = tree.nodes()
    assert steps and {node.meta["author"] for node in steps} <= {"draft", "base"}
    assert all(node.depth <= 2 for node in steps)
    assert result.candidates
    usage = result.usage
    # Every step drafted (one model call) and rated (one verifier call), then scored by the
    # step judge: both kinds of calls were made and charged.
    assert usage.model_calls >= len(steps)
    assert usage.verifier_calls >= len(steps)
    assert usage.generated_tokens >= sum(len(node.token_ids) for node in steps)
    assert engine.engine.get_num_unfinished_requests() == 0


def test_ponder_graph_draws_a_composed_config(tmp_path) -> None:
    out = tmp_path / "bon.png"
    done = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "graph", "best_of_n_over_budget_forcing", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "best_of_n (strategy) n=4" in done.stdout
    assert "├─ sampler: budget_forcing (strategy)" in done.stdout
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
