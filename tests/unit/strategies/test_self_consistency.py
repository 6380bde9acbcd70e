"""Self-consistency on the scripted backend: the vote, its tie-breaks, batching, budgets."""

from __future__ import annotations

import pytest
from conftest import scripted_context

from ponder.backends.scripted import ScriptedSample
from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.core.usage import Usage
from ponder.strategies import SamplingConfig, SelfConsistency

PROBLEM = Problem(prompt="What is 40 + 2?")


@pytest.mark.parametrize(
    ("script", "answer", "selected"),
    [
        (["Answer: 42", "Answer: 41", "Answer: 42", "Answer: 41", "Answer: 42"], "42", 0),
        (["Answer: 41", "so Answer: 42", "Answer: 42.0", "Answer: $42$", "Answer: 41"], "42.0", 2),
        (["long chain Answer: 7", "Answer: 9", "more words Answer: 7", "Answer: 9"], "9", 1),
        (["Answer: 7", "Answer: 9", "Answer: 9", "Answer: 7"], "7", 0),
        (["no answer", "still none", "Answer: 3"], "3", 2),
        (["no answer", "still none"], None, None),
    ],
    ids=["plain-majority", "equivalent-forms-vote-together", "tie-to-shortest-chain",
         "tie-same-length-to-earliest", "unanswered-do-not-vote", "nothing-to-vote-on"],
)
async def test_vote(script: list[str], answer: str | None, selected: int | None) -> None:
    ctx = scripted_context(script)
    result = await SelfConsistency(n=len(script)).run(PROBLEM, ctx)
    assert result.answer == answer
    assert result.selected_index == selected
    assert len(result.candidates) == len(script)
    assert not result.budget_exhausted


async def test_all_samples_go_to_the_engine_in_one_request() -> None:
    ctx = scripted_context(["Answer: 1"] * 8)
    await SelfConsistency(n=8).run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == [8]


async def test_vote_counts_are_reported() -> None:
    ctx = scripted_context(["Answer: 5", "Answer: 5.0", "Answer: 6"])
    result = await SelfConsistency(n=3).run(PROBLEM, ctx)
    assert sorted(result.details["votes"].values()) == [1, 2]


async def test_token_budget_submits_what_fits_then_tops_up_with_what_is_left() -> None:
    # 4 chains of up to 20 tokens need 80; 50 fit two at a time. Each chain uses 9 tokens,
    # so after the first wave 32 are left: one more chain fits, then 23 left: one more.
    ctx = scripted_context(["Answer: 1"] * 4, Budget(generated_tokens=50))
    result = await SelfConsistency(n=4, sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == [2, 1, 1]
    assert len(result.candidates) == 4
    assert not result.budget_exhausted
    assert result.usage.generated_tokens == 36 <= 50


async def test_a_budget_that_runs_out_returns_the_best_so_far() -> None:
    ctx = scripted_context(["Answer: 1"] * 4, Budget(generated_tokens=25))
    result = await SelfConsistency(n=4, sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert len(result.candidates) == 1
    assert result.answer == "1"
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert result.usage.generated_tokens <= 25


async def test_a_budget_too_small_for_one_chain_tries_one_shorter_chain() -> None:
    ctx = scripted_context(["Answer: 1", "Answer: 2"], Budget(generated_tokens=5))
    result = await SelfConsistency(n=2, sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert [r.params.max_tokens for r in ctx.backend.requests] == [5]
    assert [c.text for c in result.candidates] == ["Answe"]
    assert result.answer is None
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert result.usage.generated_tokens == 5


async def test_a_spent_budget_submits_nothing() -> None:
    ctx = scripted_context(["Answer: 1"], Budget(model_calls=1))
    ctx.ledger.charge(Usage(model_calls=1))
    result = await SelfConsistency(n=2).run(PROBLEM, ctx)
    assert ctx.backend.requests == []
    assert result.candidates == [] and result.answer is None
    assert result.budget_exhausted and result.exhausted_by == "model_calls"


async def test_the_clock_aborts_slow_chains_and_counts_their_tokens() -> None:
    fast = ScriptedSample(text="Answer: 3", delay=0.001)
    slow = ScriptedSample(text="thinking " * 50 + "Answer: 4", delay=0.01)
    ctx = scripted_context([fast, slow, fast], Budget(seconds=0.3))
    result = await SelfConsistency(n=3, sampling=SamplingConfig(max_tokens=1000)).run(PROBLEM, ctx)
    assert result.answer == "3"
    assert len(result.candidates) == 2
    assert result.budget_exhausted and result.exhausted_by == "seconds"
    assert result.usage.cancelled_tokens > 0
    assert result.usage.generated_tokens == 18 + result.usage.cancelled_tokens


def earlier_chains(*answers: str) -> list[Candidate]:
    """Chains sampled before the vote (by a probe), numbered from 0 as a probe numbers them."""
    return [Candidate(index=i, text=f"Answer: {a}", num_tokens=5, finish_reason="stop", answer=a)
            for i, a in enumerate(answers)]


@pytest.mark.parametrize(("n", "sampled"), [(5, [3]), (2, []), (1, [])],
                         ids=["samples-the-rest", "enough-already", "more-than-n"])
async def test_earlier_chains_vote_and_only_the_rest_are_sampled(n: int, sampled: list[int]) -> None:
    ctx = scripted_context(["Answer: 7"] * 3)
    result = await SelfConsistency(n=n).vote_with(PROBLEM, ctx, earlier_chains("9", "7"))
    assert [r.params.n for r in ctx.backend.requests] == sampled
    assert len(result.candidates) == 2 + sum(sampled)  # every earlier chain votes
    assert [c.index for c in result.candidates] == list(range(len(result.candidates)))
    assert result.answer == ("7" if sampled else "9")  # 9 and 7 tie: the earlier wins
    assert result.details["earlier_chains"] == 2
    assert result.usage.generated_tokens == 9 * sum(sampled)  # the earlier tokens were spent before


@pytest.mark.parametrize("strategy", [
    SelfConsistency(n=4, format="program"), SelfConsistency(n=4, sampler="short_mk"),
], ids=["programs", "sampler"])
async def test_earlier_chains_are_refused_where_they_are_unlike_the_candidates(
    strategy: SelfConsistency,
) -> None:
    assert not strategy.takes_earlier_chains("words")
    with pytest.raises(ValueError, match="earlier 'words' chains vote only with a self-consistency that samples"):
        await strategy.vote_with(PROBLEM, scripted_context(["Answer: 7"]), earlier_chains("7"))


def test_program_chains_vote_with_a_self_consistency_over_programs() -> None:
    programs = SelfConsistency(n=4, format="program")
    assert programs.takes_earlier_chains("program") and not programs.takes_earlier_chains("words")
