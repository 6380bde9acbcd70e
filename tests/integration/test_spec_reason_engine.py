"""Speculative reasoning on the real engine, the embedded model drafting for itself: chains
run end to end, the draft, judge and base tokens add up to the usage, and the rating calls
reuse the prefix cache."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.search.expansion import StepConfig
from ponder.strategies import SamplingConfig, SpecReason
from ponder.strategies.step_generators import SpeculativeSteps

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Long enough that the rendered prompt fills one 128-token CPU cache block on its own.
QUESTION = (
    "A school orders supplies for its art room. Each box of crayons holds 8 crayons and "
    "each box of markers holds 6 markers. The art teacher counts the shelves twice to be "
    "sure: there are 4 boxes of crayons on the top shelf, 3 boxes of crayons on the middle "
    "shelf, and 5 boxes of markers on the bottom shelf. Some of the crayons are broken, but "
    "the teacher keeps them anyway because the children like to use the small pieces for "
    "shading. The teacher wants to know how many crayons there are in total on the top and "
    "middle shelves together. How many crayons are there?"
)


async def test_spec_reason_runs_end_to_end_and_its_usage_adds_up(engine: VllmBackend) -> None:
    strategy = SpecReason(
        n=2,
        steps=SpeculativeSteps(threshold=5.0),  # draft: None, the engine
        step=StepConfig(max_step_tokens=32),
        max_steps=4,
        sampling=SamplingConfig(max_tokens=64),
    )
    result = await asolve(QUESTION, strategy=strategy, backend=engine)
    details, usage = result.details, result.usage
    print({k: v for k, v in details.items()}, usage.to_dict())

    assert len(result.candidates) == 2 and details["shared_token_ids"] is True
    assert sum(details["ended_by"].values()) == 2 and not result.budget_exhausted
    judged = details["accepted_steps"] + details["rejected_steps"]
    assert judged == details["judge_calls"] == usage.verifier_calls >= 2
    assert details["acceptance_rate"] == pytest.approx(details["accepted_steps"] / judged, abs=1e-4)
    # Every generated token is a draft's, a base step's (rewrites, answers) or a rating.
    assert usage.generated_tokens == (
        details["draft_generated_tokens"] + details["base_generated_tokens"]
        + details["judge_generated_tokens"]
    )
    assert details["judge_generated_tokens"] == details["judge_calls"]
    # Model calls: one draft per rating, one rewrite per rejection, at most one answer per chain.
    rewrites_and_drafts = judged + details["rejected_steps"]
    assert rewrites_and_drafts <= usage.model_calls <= rewrites_and_drafts + 2
    kept = sum(c.num_tokens for c in result.candidates)
    assert kept == details["draft_tokens_kept"] + details["base_tokens_kept"]
    assert all(c.num_tokens <= 64 for c in result.candidates)
    assert all(0 <= c.thinking_tokens <= c.num_tokens for c in result.candidates)
    assert usage.thinking_tokens <= usage.generated_tokens - details["judge_generated_tokens"]
    # Each rating call continues a chain whose question block the engine holds already.
    assert usage.cached_prompt_tokens >= 128 * details["judge_calls"]
    assert engine.engine.get_num_unfinished_requests() == 0
