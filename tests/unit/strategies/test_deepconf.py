"""DeepConf on the scripted backend: the warm-up threshold, traces aborted at the token their
group confidence crosses it, sampling that stops once the vote is settled, the offline filter
and weighted vote, budgets and validation.

The scripted backend's top logprobs hold only the sampled token, so a token's confidence is
minus its scripted logprob: ``trace(text, 2.0)`` is a trace of confidence 2 at every token."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import scripted_context
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.strategies import DeepConf, SamplingConfig
from ponder.verifiers.confidence import ConfidenceSettings

PROBLEM = Problem(prompt="What is 40 + 2?")
LONG = SamplingConfig(max_tokens=1000)


def trace(text: str, confidence: float, delay: float = 0.0) -> ScriptedSample:
    return ScriptedSample(text=text, logprobs=[-confidence] * len(text), delay=delay)


async def test_online_traces_are_stopped_at_the_token_whose_group_falls_below_the_warmup_threshold(
) -> None:
    # Warm-up lowest groups 2 and 4: keep=0.5 puts the threshold at their median, 3.
    wavering = ScriptedSample(
        text="x" * 30 + "Answer: 4", logprobs=[-5.0] * 8 + [-1.0] * 31, delay=0.001
    )
    ctx = scripted_context([trace("Answer: 3", 2.0), trace("Answer: 4", 4.0), wavering])
    strategy = DeepConf(
        n=3, warmup=2, keep=0.5, consensus=None, sampling=LONG,
        confidence=ConfidenceSettings(window=4, top_k=1),
    )
    result = await strategy.run(PROBLEM, ctx)
    assert result.details["threshold"] == pytest.approx(3.0)
    stopped = result.candidates[2]
    # Groups of 4 after the 8 sure tokens: 4.0, 3.0 (not below), then 2.0 at token 11.
    assert (stopped.finish_reason, stopped.num_tokens) == ("aborted", 11)
    assert result.details["stopped_low_confidence"] == 1
    assert result.usage.cancelled_tokens == 11
    assert result.usage.generated_tokens == 9 + 9 + 11
    assert result.details["voters"] == [0, 1]  # every warm-up trace votes, by its confidence
    assert result.details["votes"] == pytest.approx({"3": 2.0, "4": 4.0})
    assert result.answer == "4"
    assert [r.params.n for r in ctx.backend.requests] == [2, 1]
    assert all(r.params.logprobs == 1 for r in ctx.backend.requests)


async def test_a_settled_warmup_samples_nothing_more() -> None:
    ctx = scripted_context([trace("Answer: 3", 2.0), trace("Answer: 3", 2.5)])
    result = await DeepConf(n=8, warmup=2, sampling=LONG).run(PROBLEM, ctx)
    assert len(ctx.backend.requests) == 1
    assert result.answer == "3" and result.details["settled"]
    assert not result.budget_exhausted


async def test_traces_still_running_when_the_vote_settles_are_aborted() -> None:
    slow = trace("thinking " * 30 + "Answer: 4", 1.0, delay=0.002)
    script = [
        trace("Answer: 3", 1.0), trace("Answer: 4", 1.0),
        trace("Answer: 3", 1.0, 0.001), slow, trace("Answer: 3", 1.0, 0.0012), slow,
    ]
    ctx = scripted_context(script)
    result = await DeepConf(n=6, warmup=2, keep=1.0, consensus=0.7, sampling=LONG).run(PROBLEM, ctx)
    # After both fast traces: 3 holds 3 of 4 votes (0.75 >= 0.7); the slow ones stop.
    assert result.details["stopped_settled"] == 2
    assert [c.finish_reason for c in result.candidates] == ["stop"] * 3 + ["aborted", "stop", "aborted"]
    assert result.details["votes"] == {"3": 3.0, "4": 1.0}
    assert result.answer == "3"
    assert result.usage.wall_seconds < 0.4  # a slow trace alone needs 0.56 s
    assert result.usage.cancelled_tokens > 0


@pytest.mark.parametrize(
    ("keep", "voters", "votes", "answer"),
    [
        (1.0, [0, 1, 2, 3], {"5": 3.0, "7": 5.0}, "7"),
        (0.25, [3], {"7": 5.0}, "7"),
    ],
    ids=["confidence-weighted-vote-beats-the-count", "only-the-most-confident-vote"],
)
async def test_offline_keeps_the_most_confident_share_and_weights_the_vote(
    keep: float, voters: list[int], votes: dict[str, float], answer: str
) -> None:
    script = [trace("Answer: 5", 1.0)] * 3 + [trace("Answer: 7", 5.0)]
    ctx = scripted_context(script)
    result = await DeepConf(n=4, mode="offline", keep=keep, sampling=LONG).run(PROBLEM, ctx)
    assert result.details["voters"] == voters
    assert result.details["votes"] == pytest.approx(votes)
    assert result.answer == answer
    assert [(r.params.n, r.params.logprobs) for r in ctx.backend.requests] == [(4, 5)]
    assert [c.score for c in result.candidates] == pytest.approx([1.0, 1.0, 1.0, 5.0])


async def test_when_no_kept_trace_has_an_answer_every_finished_trace_votes() -> None:
    script = [trace("Answer: 5", 1.0)] * 3 + [trace("no answer here", 5.0)]
    result = await DeepConf(n=4, mode="offline", keep=0.25, sampling=LONG).run(PROBLEM, scripted_context(script))
    assert "fallback" in result.details
    assert result.answer == "5"
    assert result.candidates[3].score_reason == "no answer"


async def test_the_budget_refuses_traces_beyond_it_and_says_so() -> None:
    ctx = scripted_context([trace("Answer: 3", 2.0), trace("Answer: 4", 2.0)] + [
        trace("Answer: 5", 2.0)] * 2, Budget(generated_tokens=50))
    strategy = DeepConf(n=4, warmup=2, consensus=None, sampling=SamplingConfig(max_tokens=20))
    result = await strategy.run(PROBLEM, ctx)
    assert len(result.candidates) == 3  # 2 warm-up (18 tokens), then 20 of the 32 left
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert result.usage.generated_tokens <= 50


async def test_nothing_fits_gives_an_empty_result_cut_by_the_budget() -> None:
    ctx = scripted_context([], Budget(generated_tokens=10))
    result = await DeepConf(sampling=SamplingConfig(max_tokens=20)).run(PROBLEM, ctx)
    assert result.candidates == [] and result.answer is None
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": 2, "warmup": 3}, "warmup must be <= n, got warmup=3, n=2"),
        ({"keep": 0.0}, "keep"),
        ({"consensus": 0.5}, "consensus"),
        ({"confidence": {"top_k": 21}}, "top_k"),
        ({"confidence": {"window": 0}}, "window"),
    ],
    ids=["warmup-over-n", "keep-zero", "consensus-not-a-majority", "top-k-over-20", "window-zero"],
)
def test_bad_settings_are_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeepConf(**fields)


def test_offline_ignores_warmup_over_n() -> None:
    assert DeepConf(n=2, warmup=3, mode="offline").warmup == 3


async def test_a_vote_of_one_is_never_settled() -> None:
    ctx = scripted_context([trace("Answer: 3", 2.0), trace("Answer: 3", 2.0)])
    result = await DeepConf(n=2, warmup=1, keep=1.0, sampling=LONG).run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == [1, 1]
    assert result.details["settled"] and result.answer == "3"


async def test_a_backend_that_returns_no_logprobs_is_refused_with_the_reason() -> None:
    class Blind(ScriptedBackend):
        """Drops the logprobs it was asked for, as a server that ignores the field does."""

        async def _stream(self, request, state):  # type: ignore[no-untyped-def]
            async for _ in super()._stream(request, state):
                for completion in state.completions:
                    completion.logprobs = completion.top_logprobs = None
                yield

    ctx = scripted_context(["Answer: 3"] * 2)
    ctx.backend = Blind(ctx.backend.handler)
    with pytest.raises(BadRequestError, match="deepconf reads token confidence from top logprobs"):
        await DeepConf(n=2, warmup=2, sampling=LONG).run(PROBLEM, ctx)


async def test_a_trace_whose_last_window_dips_as_it_finishes_ran_to_its_end_and_votes() -> None:
    # Threshold 3 (warm-up lowest groups 2 and 4); the third trace's only full window below
    # it ends with its last token, so there was nothing left to stop.
    ending_low = ScriptedSample(
        text="Answer: 7", logprobs=[-5.0] * 6 + [-1.0] * 3, delay=0.001
    )
    ctx = scripted_context([trace("Answer: 3", 2.0), trace("Answer: 4", 4.0), ending_low])
    strategy = DeepConf(
        n=3, warmup=2, keep=0.5, consensus=None, sampling=LONG,
        confidence=ConfidenceSettings(window=4, top_k=1),
    )
    result = await strategy.run(PROBLEM, ctx)
    assert result.candidates[2].finish_reason == "stop"
    assert result.details["stopped_low_confidence"] == 0
    assert result.details["voters"] == [0, 1, 2]
    assert result.usage.cancelled_tokens == 0
