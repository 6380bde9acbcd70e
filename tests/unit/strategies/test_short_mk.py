"""short-m@k and First Finish Search on the scripted backend: who is stopped and when, the
vote among the first finishers, truncated chains, validation and budgets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import scripted_context
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedSample
from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.strategies import FirstFinish, SamplingConfig, ShortMK

PROBLEM = Problem(prompt="What is 40 + 2?")
LONG = SamplingConfig(max_tokens=1000)


def fast(text: str, delay: float = 0.001) -> ScriptedSample:
    return ScriptedSample(text=text, delay=delay)


def slow(answer: str) -> ScriptedSample:
    return ScriptedSample(text="thinking " * 40 + f"Answer: {answer}", delay=0.002)


async def test_the_slow_chains_are_aborted_once_m_have_finished() -> None:
    ctx = scripted_context([slow("3"), fast("Answer: 3"), slow("3"), fast("Answer: 3", 0.0015)])
    result = await ShortMK(k=4, m=2, sampling=LONG).run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == [4]
    assert [c.text for c in result.candidates] == ["Answer: 3", "Answer: 3"]
    assert result.answer == "3"
    assert result.details["finished_first"] == 2 and result.details["stopped"] == 2
    usage = result.usage
    assert usage.cancelled_tokens > 0
    assert result.details["cancelled_tokens"] == usage.cancelled_tokens
    assert usage.generated_tokens == 18 + usage.cancelled_tokens
    assert usage.wall_seconds < 0.5  # the slow chains alone need 0.75 s
    assert not result.budget_exhausted


@pytest.mark.parametrize(
    ("script", "m", "answer", "votes"),
    [
        ([fast("Answer: 4"), slow("5"), fast("Answer: 5", 0.002), slow("5"),
          fast("Answer: 4", 0.003)], 3, "4", {"4": 2, "5": 1}),
        ([fast("so the Answer: 7"), fast("Answer: 9"), slow("7")], 2, "9", {"7": 1, "9": 1}),
        ([fast("Answer: 1", 0.002), fast("Answer: 2"), slow("1")], 2, "2", {"1": 1, "2": 1}),
        ([fast("no answer here"), fast("Answer: 6", 0.002), slow("6")], 2, "6", {"6": 1}),
    ],
    ids=["only-the-first-m-vote", "tie-to-shortest-chain", "tie-same-length-to-earliest-finisher",
         "unanswered-do-not-vote"],
)
async def test_the_first_m_finishers_vote(
    script: list[ScriptedSample], m: int, answer: str, votes: dict[str, float]
) -> None:
    ctx = scripted_context(script)
    result = await ShortMK(k=len(script), m=m, sampling=LONG).run(PROBLEM, ctx)
    assert result.answer == answer
    assert result.details["votes"] == votes
    assert result.details["finished_first"] == m
    assert len(result.candidates) == m


async def test_chains_cut_by_max_tokens_do_not_count_toward_m() -> None:
    truncated = fast("x" * 40, 0.0001)  # reaches max_tokens=20 first
    script = [truncated, fast("Answer: 5"), fast("Answer: 6 ok", 0.002), slow("7")]
    ctx = scripted_context(script)
    result = await ShortMK(k=4, m=2, sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert [c.finish_reason for c in result.candidates] == ["length", "stop", "stop"]
    assert result.details["finished_first"] == 2 and result.details["stopped"] == 1
    assert result.details["votes"] == {"5": 1, "6": 1}
    assert result.answer == "5"


async def test_fewer_than_m_natural_finishes_vote_among_those() -> None:
    ctx = scripted_context([fast("x" * 40, 0.0001), fast("Answer: 5"), fast("Answer: 6 ok", 0.002)])
    result = await ShortMK(k=3, m=3, sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert len(result.candidates) == 3
    assert result.details["finished_first"] == 2 and result.details["stopped"] == 0
    assert result.answer == "5"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ShortMK(k=2, m=3), "m must be <= k, got m=3, k=2"),
        (lambda: ShortMK(k=0, m=1), "k\n  Input should be greater than or equal to 1"),
        (lambda: ShortMK(k=4, m=0), "m\n  Input should be greater than or equal to 1"),
        (lambda: FirstFinish(k=2, j=3), "j must be <= k, got j=3, k=2"),
    ],
    ids=["m-above-k", "k-zero", "m-zero", "j-above-k"],
)
def test_bad_sizes_are_validation_errors(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


async def test_first_finish_returns_the_earliest_finisher() -> None:
    ctx = scripted_context([slow("1"), fast("Answer: 2"), fast("Answer: 3", 0.0005)])
    result = await FirstFinish(k=3, sampling=LONG).run(PROBLEM, ctx)
    assert [c.text for c in result.candidates] == ["Answer: 3"]
    assert result.answer == "3" and result.details["stopped"] == 2


async def test_first_finish_keeps_the_earliest_finisher_even_without_an_answer() -> None:
    script = [fast("no idea"), fast("Answer: 8", 0.002), slow("8")]
    first = await FirstFinish(k=3, sampling=LONG).run(PROBLEM, scripted_context(script))
    short_1 = await ShortMK(k=3, m=1, sampling=LONG).run(PROBLEM, scripted_context(script))
    assert first.best is not None and first.best.text == "no idea"
    assert short_1.selected_index is None


async def test_first_finish_with_j_votes_among_the_first_j() -> None:
    script = [fast("Answer: 2", 0.002), fast("Answer: 1"), fast("Answer: 2", 0.003), slow("1")]
    result = await FirstFinish(k=4, j=3, sampling=LONG).run(PROBLEM, scripted_context(script))
    assert result.answer == "2" and result.details["votes"] == {"1": 1, "2": 2}


@pytest.mark.parametrize(
    ("tokens", "m", "requests", "candidates", "exhausted_by"),
    [
        (80, 2, [4], 4, None),  # all four finish in the same step: all are kept
        (50, 2, [2], 2, None),
        (50, 3, [2, 1], 3, None),
        (25, 3, [1], 1, "generated_tokens"),
    ],
    ids=["k-chains-fit", "m-reached-in-what-fits", "tops-up-until-m", "runs-out-before-m"],
)
async def test_the_budget_is_respected(
    tokens: int, m: int, requests: list[int], candidates: int, exhausted_by: str | None
) -> None:
    ctx = scripted_context(["Answer: 1"] * 8, Budget(generated_tokens=tokens))
    result = await ShortMK(k=4, m=m, sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == requests
    assert len(result.candidates) == candidates
    assert result.answer == "1"
    assert result.usage.generated_tokens <= tokens
    assert result.budget_exhausted == (exhausted_by is not None)
    assert result.exhausted_by == exhausted_by
