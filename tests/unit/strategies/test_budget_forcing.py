"""Budget forcing by stop-and-resubmit on the scripted backend (one character = one token):
endings below the minimum are overridden with "Wait", the maximum forces the answer, the
answer keeps its own limit, usage adds up, and bad input is refused."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies import BudgetForcing, SamplingConfig, strategies

PROBLEM = Problem(prompt="What is 3 + 4?")


def by_call(*texts: str) -> Callable[[GenerationRequest, int, int], ScriptedSample]:
    """Each model call generates the next text (a call that is not scripted fails the test)."""
    return lambda request, sample, call: ScriptedSample(texts[call])


async def run(
    handler: Callable[[GenerationRequest, int, int], ScriptedSample],
    budget: Budget | None = None,
    **fields: object,
) -> tuple[Result, ScriptedBackend]:
    backend = ScriptedBackend(handler)
    ctx = Run(backend=backend, ledger=Ledger(budget or Budget()), rng=random.Random(0))
    result = await BudgetForcing(**fields).run(PROBLEM, ctx)
    return result, backend


def tail(backend: ScriptedBackend, call: int, length: int) -> str:
    """The last characters of a call's prompt: the chain it continued."""
    return backend.decode(backend.requests[call].prompt_token_ids[-length:])


def assert_usage_adds_up(result: Result) -> None:
    chains, usage = result.details["chains"], result.usage
    assert usage.generated_tokens == sum(c["thinking_tokens"] + c["answer_tokens"] for c in chains)
    assert usage.thinking_tokens == sum(c["thinking_tokens"] for c in chains)
    for candidate, chain in zip(result.candidates, chains):
        spent = candidate.num_tokens - chain["injected_tokens"] + chain["dropped_tokens"]
        assert spent == chain["thinking_tokens"] + chain["answer_tokens"]
    assert usage.model_calls == sum(c["model_calls"] for c in chains)


async def test_an_ending_below_the_minimum_becomes_wait_and_the_chain_continues() -> None:
    result, backend = await run(
        by_call("abc Answer: 5", " more thinking Answer: 6", " 7"),
        min_thinking_tokens=10, max_answer_tokens=8,
    )
    (candidate,) = result.candidates
    assert candidate.text == "abc Wait more thinking Answer: 7"
    assert result.answer == "7"
    assert tail(backend, 1, 8) == "abc Wait"  # the marker dropped, the word appended as ids
    assert tail(backend, 2, 7) == "Answer:"  # closed by the model: its own marker is kept
    assert [r.params.stop for r in backend.requests] == [("Answer:",), ("Answer:",), ()]
    assert backend.requests[2].params.max_tokens == 8
    (chain,) = result.details["chains"]
    assert chain["forced_continuations"] == 1 and not chain["forced_close"]
    assert chain["injected_tokens"] == 4 and chain["dropped_tokens"] == 7
    assert candidate.thinking_tokens == len("abc Wait more thinking ")
    assert result.usage.generated_tokens == len("abc Answer:") + 22 + 2
    assert result.usage.thinking_tokens == 19 + 7  # the ids generated before "Answer:"
    assert result.details["mode"] == "round_trip"
    assert_usage_adds_up(result)


async def test_an_early_stop_without_the_marker_is_overridden_too() -> None:
    result, backend = await run(by_call("so 7.", " yes, 7. Answer:", " 7"), min_thinking_tokens=8)
    assert result.candidates[0].text == "so 7. Wait yes, 7. Answer: 7"
    assert result.details["forced_continuations"] == 1
    assert_usage_adds_up(result)


async def test_at_the_maximum_the_thinking_is_closed_and_the_answer_has_its_own_limit() -> None:
    result, backend = await run(
        by_call("x" * 100, " 42 and then some more words"),
        min_thinking_tokens=0, max_thinking_tokens=20, max_answer_tokens=5,
    )
    assert backend.requests[0].params.max_tokens == 20
    assert tail(backend, 1, 28) == "x" * 20 + "\nAnswer:"
    assert backend.requests[1].params.max_tokens == 5
    (candidate,) = result.candidates
    assert candidate.text == "x" * 20 + "\nAnswer: 42 a"
    assert candidate.answer == "42" and candidate.finish_reason == "length"
    assert result.details["forced_closes"] == 1
    assert candidate.thinking_tokens == 21  # the forced "\n" sits before the marker
    assert result.usage.thinking_tokens == 20  # but the engine did not generate it
    assert_usage_adds_up(result)


async def test_the_thinking_never_exceeds_the_maximum_even_when_continued() -> None:
    result, backend = await run(
        by_call("abcde Answer:", "x" * 50, " 9"), min_thinking_tokens=15, max_thinking_tokens=15,
    )
    assert backend.requests[1].params.max_tokens == 15 - len("abcde Wait")
    assert result.candidates[0].text == "abcde Wait" + "xxxxx" + "\nAnswer: 9"
    assert result.details["forced_continuations"] == 1 and result.details["forced_closes"] == 1


async def test_continuations_stop_after_max_continuations() -> None:
    result, backend = await run(
        by_call("a Answer:", " b Answer:", " c Answer:", " 1"),
        min_thinking_tokens=50, max_continuations=2,
    )
    assert result.candidates[0].text == "a Wait b Wait c Answer: 1"
    assert len(backend.requests) == 4
    assert result.details["forced_continuations"] == 2


async def test_above_the_minimum_a_stop_without_the_marker_ends_the_chain() -> None:
    result, backend = await run(by_call("it is 7"), min_thinking_tokens=3)
    assert len(backend.requests) == 1
    assert result.answer == "7" and result.details["forced_closes"] == 0


async def test_n_chains_vote() -> None:
    answers = iter([" 4", " 5", " 4"])

    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        if request.params.stop:
            return ScriptedSample("think Answer:")
        return ScriptedSample(next(answers))

    result, backend = await run(handler, n=3, min_thinking_tokens=0)
    assert result.answer == "4" and result.details["votes"] == {"4": 2, "5": 1}
    assert len(backend.requests) == 6
    assert_usage_adds_up(result)


async def test_a_token_budget_shrinks_the_thinking_so_that_the_answer_still_fits() -> None:
    budget = Budget(generated_tokens=60)
    result, backend = await run(by_call("x" * 100, " 3"), budget, max_answer_tokens=10)
    assert result.details["max_thinking_tokens"] == 60 - 10 - len("\nAnswer:")
    assert result.answer == "3" and result.details["forced_closes"] == 1
    assert result.usage.generated_tokens <= 60 and not result.budget_exhausted


async def test_a_budget_too_small_for_any_answer_is_reported() -> None:
    result, backend = await run(by_call(), Budget(generated_tokens=20), max_answer_tokens=16)
    assert backend.requests == [] and result.candidates == []
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"


async def test_the_clock_stops_a_chain_and_keeps_what_it_generated() -> None:
    slow = lambda request, sample, call: ScriptedSample("y" * 200, delay=0.01)  # noqa: E731
    result, backend = await run(slow, Budget(seconds=0.2))
    assert result.budget_exhausted and result.exhausted_by == "seconds"
    assert 0 < result.candidates[0].num_tokens < 200
    assert result.usage.generated_tokens == result.candidates[0].num_tokens


async def test_auto_runs_the_round_trip_and_in_engine_needs_the_processor() -> None:
    result, _ = await run(by_call("Answer:", " 1"), mode="auto", min_thinking_tokens=0)
    assert result.details["mode"] == "round_trip"
    with pytest.raises(BadRequestError, match="budget_forcing=True"):
        await run(by_call(), mode="in_engine")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_thinking_tokens": 50, "max_thinking_tokens": 20}, "min_thinking_tokens must be <="),
        ({"min_thinking_tokens": -1}, "greater than or equal to 0"),
        ({"max_answer_tokens": 0}, "greater than or equal to 1"),
        ({"max_continuations": -2}, "greater than or equal to 0"),
        ({"max_thinking_tokens": 300}, "sampling.max_tokens .* must be >= .* = 332"),
        ({"sampling": SamplingConfig(stop=("\n",))}, "sampling.stop must be empty"),
        ({"mode": "fast"}, "auto"),
        ({"n": 3, "sampling": SamplingConfig(temperature=0.0)}, "n must be 1 when"),
    ],
    ids=["min-above-max", "negative-min", "zero-answer", "negative-continuations",
         "chain-ceiling-too-low", "stop-strings", "unknown-mode", "greedy-with-n"],
)
def test_bad_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BudgetForcing(**fields)


def test_the_registry_names_the_bad_field() -> None:
    with pytest.raises(BadRequestError, match="strategy.max_answer_tokens"):
        strategies.build({"name": "budget_forcing", "max_answer_tokens": -3})
