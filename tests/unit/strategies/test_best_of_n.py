"""Best-of-N on the scripted backend: argmax and weighted selection."""

from __future__ import annotations

import math

import pytest
from conftest import TableVerifier, scripted_context

from ponder.backends.scripted import ScriptedSample
from ponder.core.problem import Problem
from ponder.strategies import BestOfN

PROBLEM = Problem(prompt="What is 40 + 2?")
SCRIPT = ["Answer: 41", "Answer: 42", "so Answer: 42", "Answer: 43"]


@pytest.mark.parametrize(
    ("selection", "scores", "answer", "selected"),
    [
        ("argmax", (0.9, 0.5, 0.5, 0.1), "41", 0),
        ("weighted", (0.9, 0.5, 0.5, 0.1), "42", 1),
        ("argmax", (0.2, 0.7, 0.7, 0.1), "42", 1),
        ("argmax", (None, None, 0.3, None), "42", 2),
        ("weighted", (None, None, None, None), None, None),
    ],
    ids=["argmax-top-score", "weighted-sum-beats-single-top", "argmax-tie-to-earliest",
         "unscored-are-skipped", "nothing-scored"],
)
async def test_selection(selection: str, scores: tuple, answer: str | None, selected: int | None) -> None:
    ctx = scripted_context(SCRIPT)
    strategy = BestOfN(n=4, selection=selection, verifier=TableVerifier(table=scores))
    result = await strategy.run(PROBLEM, ctx)
    assert result.answer == answer
    assert result.selected_index == selected
    assert [c.score for c in result.candidates] == list(scores)


async def test_argmax_tie_goes_to_the_shorter_chain() -> None:
    ctx = scripted_context(["so the Answer: 5", "Answer: 6"])
    result = await BestOfN(n=2, verifier=TableVerifier(table=(0.5, 0.5))).run(PROBLEM, ctx)
    assert result.answer == "6"


async def test_argmax_passes_over_a_top_scored_chain_that_gave_no_answer() -> None:
    ctx = scripted_context(["I am not sure.", "Answer: 6"])
    result = await BestOfN(n=2, verifier=TableVerifier(table=(0.9, 0.2))).run(PROBLEM, ctx)
    assert (result.answer, result.selected_index) == ("6", 1)


async def test_self_certainty_asks_for_logprobs_and_prefers_the_surer_chain() -> None:
    unsure = ScriptedSample(text="Answer: 7", logprobs=[-2.0] * 9)
    sure = ScriptedSample(text="Answer: 8", logprobs=[-0.1] * 9)
    ctx = scripted_context([unsure, sure])
    result = await BestOfN(n=2).run(PROBLEM, ctx)
    assert ctx.backend.requests[0].params.logprobs == 0
    assert result.answer == "8"
    assert result.candidates[1].score == pytest.approx(math.exp(-0.1))
