"""Adaptive sampling on the scripted backend: the wave that stops it, the limits it never
passes, pruning mid-generation, and validation."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from conftest import TableVerifier
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.strategies import AdaptiveSampling, strategies
from ponder.verifiers.base import Score, Verifier
from ponder.verifiers.self_eval import SelfEvaluation

PROBLEM = Problem(prompt="What is 40 + 2?")


def _context(backend: ScriptedBackend, budget: Budget | None = None) -> Run:
    return Run(backend, Ledger(budget or Budget()), random.Random(0))


def _numbered(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
    """Distinct chains (the verifier's cache scores equal texts once), 9 tokens each."""
    return ScriptedSample(f"{call}.{sample} is 42")


class PrefixVerifier(Verifier):
    """Scores a chain by the entry of ``table`` its text starts with (the longest one), so a
    chain can score one way mid-way and another once finished."""

    table: dict[str, float]

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        return [
            Score(self.table[max((k for k in self.table if c.text.startswith(k)), key=len)])
            for c in candidates
        ]


# -- when it stops ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("waves", "n_max", "scores", "drawn", "stopped_by", "stop_score"),
    [
        pytest.param((1, 2, 4), 16, (0.9,), [1], "threshold", 0.9, id="first-chain-passes"),
        pytest.param((1, 2, 4), 16, (0.1, 0.2, 0.85), [1, 2], "threshold", 0.85, id="wave-2"),
        pytest.param(
            (1, 2, 4), 16, (0.1,) * 6 + (0.8,), [1, 2, 4], "threshold", 0.8, id="wave-3-at-equal"
        ),
        pytest.param((1, 2), 6, (0.1, 0.3, 0.2) + (0.1,) * 3, [1, 2, 2, 1], "n_max", 0.3,
                     id="last-size-repeats-up-to-n_max"),
        pytest.param((4,), 3, (0.1, 0.2, 0.3), [3], "n_max", 0.3, id="first-wave-cut-to-n_max"),
    ],
)
async def test_it_stops_at_the_wave_where_a_chain_first_passes(
    waves: tuple[int, ...], n_max: int, scores: tuple[float, ...], drawn: list[int],
    stopped_by: str, stop_score: float,
) -> None:
    backend = ScriptedBackend(_numbered)
    ctx = _context(backend)
    strategy = AdaptiveSampling(
        waves=waves, n_max=n_max, threshold=0.8, verifier=TableVerifier(table=scores)
    )
    result = await strategy.run(PROBLEM, ctx)

    details = result.details
    assert (details["waves"], details["stopped_by"]) == (drawn, stopped_by)
    assert details["stop_score"] == stop_score
    assert details["samples"] == len(result.candidates) == sum(drawn)
    assert [r.params.n for r in backend.requests] == drawn  # one request per wave
    assert result.best is not None and result.best.score == stop_score
    assert not result.budget_exhausted
    assert result.usage.verifier_calls == sum(drawn)  # every chain scored once


@pytest.mark.parametrize(
    ("budget", "limit", "drawn"),
    [
        # 9 tokens a chain: 9 + 18, then one chain cut to the 8 tokens left, then refused
        pytest.param(Budget(generated_tokens=35), "generated_tokens", [1, 2, 1], id="tokens"),
        pytest.param(Budget(verifier_calls=2), "verifier_calls", [1, 2], id="verifier-calls"),
        pytest.param(Budget(model_calls=2), "model_calls", [1, 2], id="model-calls"),
    ],
)
async def test_the_budget_ends_it_and_is_never_passed(
    budget: Budget, limit: str, drawn: list[int]
) -> None:
    ctx = _context(ScriptedBackend(_numbered), budget)
    strategy = AdaptiveSampling(
        waves=(1, 2, 4), threshold=0.9, verifier=TableVerifier(table=(0.5,) + (0.1,) * 15),
        sampling=SamplingConfig(max_tokens=10),
    )
    result = await strategy.run(PROBLEM, ctx)

    assert result.details["stopped_by"] == "budget"
    assert result.details["waves"] == drawn
    assert (result.budget_exhausted, result.exhausted_by) == (True, limit)
    assert getattr(result.usage, limit) <= getattr(budget, limit)
    assert (result.selected_index, result.answer) == (0, "42")  # the best so far
    assert result.usage.generated_tokens == sum(c.num_tokens for c in result.candidates)


async def test_self_eval_end_to_end_stops_at_the_first_chain_it_calls_good() -> None:
    """The scripted answer token is the sampled one, so self-evaluation scores 0 or 1."""

    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        if request.params.max_tokens == 1:  # the self-evaluation question
            return ScriptedSample("N" if "42" in backend.decode(request.prompt_token_ids) else "Y")
        return ScriptedSample(["Answer: 41", "Answer: 40", "Answer: 42"][sample])

    backend = ScriptedBackend(handler)
    ctx = _context(backend)
    strategy = AdaptiveSampling(waves=(1, 3), verifier=SelfEvaluation(yes_word="Y", no_word="N"))
    result = await strategy.run(PROBLEM, ctx)

    assert result.details["waves"] == [1, 3]
    assert result.details["stopped_by"] == "threshold"
    assert [c.score for c in result.candidates] == [0.0, 0.0, 0.0, 1.0]
    assert (result.answer, result.selected_index) == ("42", 3)
    usage = result.usage
    # the second wave's first chain repeats the first one's text: asked once, from the cache
    assert (usage.model_calls, usage.verifier_calls) == (2, 3)
    assert usage.generated_tokens == sum(c.num_tokens for c in result.candidates) + 3


# -- pruning ---------------------------------------------------------------------------------
LETTERS = "abcdefgh"


def _lettered(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
    """Chain ``k`` spells its letter twelve times then its answer; a continuation carries on
    from what its prompt already holds of that chain."""
    if call == 0:
        return ScriptedSample(LETTERS[sample] * 12 + f" Answer: {sample}")
    text = "".join(chr(t) for t in request.prompt_token_ids)
    letter = text[-1]
    done = len(text) - len(text.rstrip(letter))
    return ScriptedSample(letter * (12 - done) + f" Answer: {LETTERS.index(letter)}")


@pytest.mark.parametrize(
    ("prune_at", "share", "partial", "pruned", "selected"),
    [
        # four chains at 4 tokens; half are dropped: the two lowest (b and d)
        pytest.param((4,), 0.5, {"a": 0.9, "b": 0.1, "c": 0.5, "d": 0.2}, {1: 4, 3: 4}, 2,
                     id="half-at-one-point"),
        # ties go against the later chain; 0.25 of 4 drops one
        pytest.param((4,), 0.25, {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}, {3: 4}, 2,
                     id="tie-drops-the-later"),
        # at 2 tokens half of 4 go (a, b), at 6 half of the 2 left (d)
        pytest.param((2, 6), 0.5, {"a": 0.1, "b": 0.2, "c": 0.6, "d": 0.7, "cccc": 0.8,
                                   "dddd": 0.3}, {0: 2, 1: 2, 3: 6}, 2, id="two-points"),
        # 0.3 of 4 rounds down to one chain
        pytest.param((4,), 0.3, {"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.7}, {2: 4}, 3,
                     id="share-rounds-down"),
    ],
)
async def test_pruning_drops_exactly_the_lowest_share_and_the_rest_run_on_from_their_ids(
    prune_at: tuple[int, ...], share: float, partial: dict[str, float], pruned: dict[int, int],
    selected: int,
) -> None:
    backend = ScriptedBackend(_lettered)
    ctx = _context(backend)
    finals = {f"{LETTERS[k] * 12} Answer: {k}": 0.3 + 0.1 * (k == selected) for k in range(4)}
    strategy = AdaptiveSampling(
        waves=(4,), n_max=4, threshold=1.0, prune_at=prune_at, prune_share=share,
        verifier=PrefixVerifier(table={**partial, **finals}),
        sampling=SamplingConfig(max_tokens=40),
    )
    result = await strategy.run(PROBLEM, ctx)

    candidates = result.candidates
    dropped = {c.index: c.num_tokens for c in candidates if c.finish_reason == "aborted"}
    assert dropped == pruned
    assert all(candidates[i].score_reason == f"pruned at {at} tokens" for i, at in pruned.items())
    survivors = [c for c in candidates if c.index not in pruned]
    assert all(c.text == f"{LETTERS[c.index] * 12} Answer: {c.index}" for c in survivors)
    assert all(c.token_ids == [ord(ch) for ch in c.text] for c in survivors)
    # each continuation is the prompt followed by that chain's own ids so far
    prompt = list(backend.requests[0].prompt_token_ids)
    continued = [list(r.prompt_token_ids) for r in backend.requests[1:]]
    assert all(ids[: len(prompt)] == prompt for ids in continued)
    assert sorted(bytes(ids[len(prompt):]).decode() for ids in continued) == sorted(
        LETTERS[i] * point for i in range(4)
        for point in prune_at if pruned.get(i, 10**6) > point
    )
    assert result.selected_index == selected and result.answer == str(selected)
    assert result.details["pruned"] == len(pruned)
    assert result.details["pruned_tokens"] == sum(pruned.values())
    assert result.usage.generated_tokens == sum(c.num_tokens for c in candidates)


async def test_a_pruned_chain_is_never_selected_even_when_it_scored_best() -> None:
    ctx = _context(ScriptedBackend(_lettered))
    table = {"a": 0.95, "b": 0.9, "aaaa": 0.2, "bbbb": 0.3}  # b scores below a mid-way only
    strategy = AdaptiveSampling(
        waves=(2,), n_max=2, threshold=1.0, prune_at=(4, 8), verifier=PrefixVerifier(table=table),
    )
    result = await strategy.run(PROBLEM, ctx)
    assert [c.finish_reason for c in result.candidates] == ["aborted", "stop"]
    assert result.candidates[0].score == 0.2 and result.candidates[1].score == 0.3
    assert result.selected_index == 1


async def test_chains_that_finish_before_a_prune_point_are_not_pruned() -> None:
    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        return ScriptedSample(["A: 1", "2: Answer: 2 at length", "3: Answer: 3 at length"][sample])

    ctx = _context(ScriptedBackend(handler))
    table = {"A": 0.0, "2": 0.4, "3": 0.5}
    strategy = AdaptiveSampling(
        waves=(3,), n_max=3, threshold=1.0, prune_at=(8,), verifier=PrefixVerifier(table=table),
    )
    result = await strategy.run(PROBLEM, ctx)
    # "A: 1" stopped at 4 tokens; of the two running at 8, half (the lower) is dropped
    assert [c.finish_reason for c in result.candidates] == ["stop", "aborted", "stop"]


async def test_a_refused_continuation_ends_sampling_by_the_budget() -> None:
    ctx = _context(ScriptedBackend(_lettered), Budget(model_calls=2))
    strategy = AdaptiveSampling(
        waves=(4,), n_max=8, threshold=1.0, prune_at=(4,),
        verifier=PrefixVerifier(table={"": 0.5}),
    )
    result = await strategy.run(PROBLEM, ctx)
    assert result.details["stopped_by"] == "budget"
    assert result.usage.model_calls == 2  # the wave and one of the two continuations
    assert sum(c.num_tokens == 4 and c.finish_reason == "length" for c in result.candidates) == 1


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"threshold": 1.5}, "threshold", id="threshold-above-1"),
        pytest.param({"threshold": -0.1}, "threshold", id="threshold-below-0"),
        pytest.param({"waves": ()}, "waves", id="no-waves"),
        pytest.param({"waves": (2, 0)}, "waves.1", id="empty-wave"),
        pytest.param({"n_max": 0}, "n_max", id="n_max-0"),
        pytest.param({"prune_share": 0.0}, "prune_share", id="share-0"),
        pytest.param({"prune_share": 1.0}, "prune_share", id="share-1"),
        pytest.param({"prune_at": (64, 32)}, "prune_at must be strictly increasing", id="unsorted"),
        pytest.param({"prune_at": (32, 32)}, "prune_at must be strictly increasing", id="repeated"),
        pytest.param({"prune_at": (256,)}, "prune_at must be below sampling.max_tokens (256)",
                     id="past-the-end"),
        pytest.param({"system_prompt": "Be brief."}, "verifier.system_prompt must equal",
                     id="self-eval-on-another-prompt"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AdaptiveSampling(**fields)
    described = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors()
    )
    assert message in described


def test_the_registry_builds_it_with_self_eval_by_default() -> None:
    strategy = strategies.build({"name": "adaptive", "prune_at": [32]})
    assert isinstance(strategy, AdaptiveSampling) and isinstance(strategy.verifier, SelfEvaluation)
    assert strategy.prune_at == (32,)
