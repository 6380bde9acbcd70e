"""Composed strategies on the scripted backend: a sampler's runs pooled into a vote or a
verifier's choice, their usage adding up in the parent's ledger, the budget holding across
runs, and self-consistency's trimmed chains."""

from __future__ import annotations

from conftest import TableVerifier, scripted_context

from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.strategies import BestOfN, CoTTrim, SamplingConfig, SelfConsistency
from ponder.strategies.cot_trim import TrimSettings

PROBLEM = Problem(prompt="What is 3 + 4?")

# Three runs of a 3-chain self-consistency, one request each, in run order.
RUNS = [
    "Answer: 7", "Answer: 7", "Answer: 7",  # run 0 selects 7 (its chain 0)
    "Answer: 8", "Answer: 8", "Answer: 7",  # run 1 selects 8 (its chain 0)
    "Answer: 9", "Answer: 8", "Answer: 7",  # run 2: a three-way tie, to its chain 0 (9)
]


async def test_selected_pool_votes_among_the_runs_winners() -> None:
    ctx = scripted_context(RUNS)
    strategy = SelfConsistency(n=3, sampler=SelfConsistency(n=3))
    result = await strategy.run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == [3, 3, 3]
    assert [c.answer for c in result.candidates] == ["7", "8", "9"]
    assert [c.index for c in result.candidates] == [0, 1, 2]
    assert result.details["pooled_from"] == [[0, 0], [1, 0], [2, 0]]
    assert [run["answer"] for run in result.details["sampler_runs"]] == ["7", "8", "9"]
    assert result.answer == "7"  # a three-way tie among equal lengths: the earliest


async def test_all_pool_votes_with_every_chain_of_every_run() -> None:
    ctx = scripted_context(RUNS)
    strategy = SelfConsistency(n=3, pool="all", sampler=SelfConsistency(n=3))
    result = await strategy.run(PROBLEM, ctx)
    assert len(result.candidates) == 9
    assert result.details["pooled_from"][4] == [1, 1]
    assert result.details["votes"] == {"7": 5.0, "8": 3.0, "9": 1.0}
    assert result.answer == "7"


async def test_usage_of_the_runs_adds_up_to_the_parents() -> None:
    ctx = scripted_context(RUNS)
    result = await SelfConsistency(n=3, sampler=SelfConsistency(n=3)).run(PROBLEM, ctx)
    runs = result.details["sampler_runs"]
    assert result.usage.generated_tokens == sum(r["generated_tokens"] for r in runs) == 81
    assert result.usage.model_calls == 3
    assert ctx.ledger.spent.generated_tokens == 81


async def test_best_of_n_scores_the_pooled_candidates() -> None:
    ctx = scripted_context(["Answer: 1", "Answer: 2", "Answer: 3"])
    strategy = BestOfN(n=3, verifier=TableVerifier(table=(0.1, 0.9, 0.5)), sampler=SelfConsistency(n=1))
    result = await strategy.run(PROBLEM, ctx)
    assert [c.score for c in result.candidates] == [0.1, 0.9, 0.5]
    assert result.answer == "2"
    assert result.details["best_score"] == 0.9


async def test_the_budget_holds_across_concurrent_runs() -> None:
    # Each run wants 2 chains of up to 20 tokens; 50 tokens hold the first run's two chains
    # and one shorter chain after that, never more.
    ctx = scripted_context(["Answer: 5" + "." * 30] * 6, Budget(generated_tokens=50))
    sampler = SelfConsistency(n=2, sampling=SamplingConfig(max_tokens=20))
    result = await SelfConsistency(n=3, sampler=sampler).run(PROBLEM, ctx)
    assert result.usage.generated_tokens <= 50
    assert result.budget_exhausted
    assert result.exhausted_by == "generated_tokens"
    assert any(run["budget_exhausted"] for run in result.details["sampler_runs"])


async def test_runs_draw_their_seeds_in_run_order() -> None:
    seeds = []
    for _ in range(2):
        ctx = scripted_context(RUNS)
        await SelfConsistency(n=3, sampler=SelfConsistency(n=3)).run(PROBLEM, ctx)
        seeds.append([r.params.seed for r in ctx.backend.requests])
    assert seeds[0] == seeds[1]
    assert len(set(seeds[0])) == 3


async def test_trimmed_self_consistency_is_cot_trimming_of_its_own_chains() -> None:
    script = ["Answer: 4", "Answer: 4", "Answer: 5"]
    trim = TrimSettings(probe=None, judge=None, answer_max_tokens=8)
    trimmed = await SelfConsistency(n=3, trim=trim).run(PROBLEM, scripted_context(script))
    plain = await CoTTrim(n=3, probe=None, judge=None, answer_max_tokens=8).run(
        PROBLEM, scripted_context(script)
    )
    assert trimmed.strategy == "self_consistency"
    assert [c.text for c in trimmed.candidates] == [c.text for c in plain.candidates]
    assert trimmed.answer == plain.answer
    assert trimmed.details["ended_by"] == plain.details["ended_by"]
    assert trimmed.usage.generated_tokens == plain.usage.generated_tokens
