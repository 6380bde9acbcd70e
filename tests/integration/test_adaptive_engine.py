"""Adaptive sampling with self-evaluation on the real engine with the embedded model: the
answer words are one token for its tokenizer, every chain is scored from its own prefix, and
usage adds up to the chains' tokens plus one token per self-evaluation, pruned chains
included."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.result import Result
from ponder.strategies import AdaptiveSampling, SamplingConfig

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

QUESTION = "What is 17 times 23?"
SAMPLING = SamplingConfig(max_tokens=96)


def _adds_up(result: Result) -> None:
    """Generated tokens = every chain's (pruned ones too) + one per self-evaluation asked."""
    usage = result.usage
    chains = sum(c.num_tokens for c in result.candidates)
    assert usage.generated_tokens == chains + usage.verifier_calls
    assert result.details["samples"] == len(result.candidates) <= 4


async def test_adaptive_self_eval_scores_every_chain_and_stops_by_a_rule(
    engine: VllmBackend,
) -> None:
    strategy = AdaptiveSampling(n_max=4, waves=(1, 3), threshold=0.99, sampling=SAMPLING)
    result = await asolve(QUESTION, strategy=strategy, backend=engine)

    details = result.details
    assert details["stopped_by"] in ("threshold", "n_max")
    assert details["waves"] == ([1] if details["stopped_by"] == "threshold" else [1, 3])
    assert result.usage.model_calls == len(details["waves"])  # one request per wave
    scores = [c.score for c in result.candidates]
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores), [
        c.score_reason for c in result.candidates
    ]
    assert details["stop_score"] == max(scores)
    assert result.best is not None and result.best.score == max(scores)
    _adds_up(result)
    assert engine.engine.get_num_unfinished_requests() == 0


async def test_pruning_counts_the_dropped_chains_work(engine: VllmBackend) -> None:
    strategy = AdaptiveSampling(
        n_max=4, waves=(4,), threshold=1.0, prune_at=(24,), prune_share=0.5, sampling=SAMPLING,
    )
    result = await asolve(QUESTION, strategy=strategy, backend=engine)

    details = result.details
    pruned = [c for c in result.candidates if c.finish_reason == "aborted"]
    dropped = {c.index for c in pruned}
    # chains still running at 24 tokens: the pruned ones and those that ran on past 24
    running = len(pruned) + sum(
        c.num_tokens > 24 for c in result.candidates if c.index not in dropped
    )
    assert len(pruned) == details["pruned"] == running // 2
    assert all(c.num_tokens == 24 and c.score is not None for c in pruned)
    assert details["pruned_tokens"] == 24 * len(pruned)
    assert result.selected_index not in dropped
    assert result.usage.model_calls == 1 + (running - len(pruned))  # one wave + each survivor
    _adds_up(result)
    assert engine.engine.get_num_unfinished_requests() == 0
