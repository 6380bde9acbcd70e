"""Sampled chains split their tokens into thinking and answer, and usage counts the thinking."""

from __future__ import annotations

from conftest import scripted_context

from ponder.core.problem import Problem
from ponder.strategies import SamplingConfig, SelfConsistency


async def test_sampled_chains_count_their_thinking_tokens() -> None:
    ctx = scripted_context(["2+2 is 4\nAnswer: 4", "Answer: 4", "hmm"])
    strategy = SelfConsistency(n=3, sampling=SamplingConfig(max_tokens=100))
    result = await strategy.run(Problem(prompt="2+2?"), ctx)
    assert [c.thinking_tokens for c in result.candidates] == [9, 0, 3]
    assert result.usage.thinking_tokens == 12
    assert result.usage.generated_tokens == 18 + 9 + 3


async def test_an_r1_format_splits_at_its_closing_marker() -> None:
    ctx = scripted_context(["<think>6*2</think>12"])
    strategy = SelfConsistency(n=1, thinking="r1", sampling=SamplingConfig(max_tokens=100))
    result = await strategy.run(Problem(prompt="6*2?"), ctx)
    assert result.candidates[0].thinking_tokens == len("<think>6*2")
    assert result.usage.thinking_tokens == 10
