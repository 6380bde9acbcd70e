"""Free-form answers in self-consistency and best-of-N on the scripted backend: which rule
chooses (``chosen_by``), what the answer then is, USC's budgeted call and its fall-backs."""

from __future__ import annotations

import pytest
from conftest import TableVerifier, scripted_context
from pydantic import ValidationError

from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.strategies import BestOfN, SelfConsistency
from ponder.strategies.cot_trim import TrimSettings
from ponder.verifiers.answers import AnswerExtractor

PROBLEM = Problem(prompt="Where is the cat?")
FREE = [
    "The cat sat on the mat.",
    "A cat was sitting on the mat.",
    "The cat is sitting on a mat.",
    "Stock prices fell sharply on Monday.",
]
"""Three paraphrases and an outlier; MBR's medoid is the second."""
MEDOID = 1
NUMERIC = ["Answer: 42", "Answer: 41", "so Answer: 42", "Answer: 42.0"]
LISTS = ["Try these: 1. sleep 2. rest", "Ideas: 1. water 2. walks", "1. stretch 2. rest", "Read."]
"""Free-form replies whose only numbers are list markers: the last-number fallback finds "2"."""
NO_NUMBERS = AnswerExtractor(methods=("boxed", "answer_line"))


@pytest.mark.parametrize(
    ("script", "options", "chosen_by", "selected"),
    [
        (FREE, {"answers": "auto"}, "mbr", MEDOID),
        (NUMERIC, {"answers": "auto"}, "majority", 0),
        (FREE, {"answers": "free_form"}, "mbr", MEDOID),
        (NUMERIC, {"answers": "free_form"}, "mbr", 3),  # 2 and 3 tie: the shorter
        (FREE, {}, None, None),
        (LISTS, {"answers": "auto"}, "majority", 2),
        (LISTS, {"answers": "auto", "extractor": NO_NUMBERS}, "mbr", 0),
    ],
    ids=["auto-free-form-texts-use-mbr", "auto-numeric-answers-vote", "free-form-forced",
         "free-form-forced-on-numbers", "default-extracted-is-unchanged",
         "auto-counts-the-last-number-fallback", "auto-without-the-fallback-uses-mbr"],
)
async def test_self_consistency_chooses_by(
    script: list[str], options: dict, chosen_by: str | None, selected: int | None
) -> None:
    result = await SelfConsistency(n=len(script), **options).run(PROBLEM, scripted_context(script))
    assert result.details["chosen_by"] == chosen_by
    assert result.selected_index == selected
    if chosen_by == "mbr":
        assert result.details["answers"] == "free_form"
        assert result.answer == script[selected]  # the chosen text, whole
        assert len(result.details["mbr_similarity"]) == len(script)
        assert "votes" not in result.details


async def test_free_form_keeps_the_extracted_answers_and_every_candidate_answers_with_its_text() -> None:
    result = await SelfConsistency(n=4, answers="free_form").run(PROBLEM, scripted_context(NUMERIC))
    assert result.details["extracted_answers"] == ["42", "41", "42", "42.0"]
    assert [c.answer for c in result.candidates] == NUMERIC


async def test_mbr_similarities_rank_the_outlier_last() -> None:
    result = await SelfConsistency(n=4, answers="free_form").run(PROBLEM, scripted_context(FREE))
    similarity = result.details["mbr_similarity"]
    assert similarity.index(max(similarity)) == MEDOID
    assert similarity.index(min(similarity)) == 3


async def test_a_whitespace_only_chain_takes_part_with_no_similarity() -> None:
    script = ["   ", *FREE[:3]]
    result = await SelfConsistency(n=4, answers="free_form").run(PROBLEM, scripted_context(script))
    assert result.details["mbr_similarity"][0] == 0.0
    assert result.selected_index == 2  # the medoid of the three paraphrases
    assert result.candidates[0].answer is None


async def test_one_chain_is_chosen() -> None:
    result = await SelfConsistency(n=1, answers="free_form").run(PROBLEM, scripted_context(FREE[:1]))
    assert (result.selected_index, result.answer, result.details["chosen_by"]) == (0, FREE[0], "mbr")


# -- USC ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "chosen_by", "selected", "fallback_reason"),
    [
        (" 3", "usc", 2, None),
        (" 4.", "usc", 3, None),
        (" nobody", "usc_fell_back_to_mbr", MEDOID, "the reply names no response"),
        (" 9", "usc_fell_back_to_mbr", MEDOID, "the reply names response 9 of 4"),
    ],
    ids=["names-3", "names-the-outlier", "names-none-falls-back", "names-9-of-4-falls-back"],
)
async def test_usc_chooses_or_falls_back_to_mbr(
    reply: str, chosen_by: str, selected: int, fallback_reason: str | None
) -> None:
    ctx = scripted_context([*FREE, reply])
    result = await SelfConsistency(n=4, answers="free_form", free_form="usc").run(PROBLEM, ctx)
    assert result.details["chosen_by"] == chosen_by
    assert result.selected_index == selected
    assert result.answer == FREE[selected]
    assert result.details["usc_reply"] == reply
    assert result.details.get("fallback_reason") == fallback_reason
    assert ("mbr_similarity" in result.details) is (chosen_by != "usc")
    assert result.usage.model_calls == 2  # the samples, then USC's question
    assert [r.params.n for r in ctx.backend.requests] == [4, 1]
    assert not result.budget_exhausted


async def test_usc_refused_by_the_budget_falls_back_to_mbr_and_says_the_budget_ended_it() -> None:
    ctx = scripted_context(FREE, Budget(model_calls=1))
    result = await SelfConsistency(n=4, answers="free_form", free_form="usc").run(PROBLEM, ctx)
    assert result.details["chosen_by"] == "usc_fell_back_to_mbr"
    assert result.details["fallback_reason"] == "the budget (model_calls) refused the call"
    assert result.details["usc_reply"] is None
    assert result.selected_index == MEDOID
    assert result.usage.model_calls == 1 and len(ctx.backend.requests) == 1
    assert result.budget_exhausted and result.exhausted_by == "model_calls"


async def test_usc_with_one_chain_asks_nothing() -> None:
    ctx = scripted_context(FREE[:1])
    result = await SelfConsistency(n=1, answers="free_form", free_form="usc").run(PROBLEM, ctx)
    assert result.selected_index == 0 and result.details["chosen_by"] == "usc_fell_back_to_mbr"
    assert result.usage.model_calls == 1 and not result.budget_exhausted


# -- best-of-N ---------------------------------------------------------------------------
GROUPS = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran in the park",
          "a dog ran in a park", "a dog ran"]
"""Unweighted, the dog group is the larger and its medoid (2) wins."""


@pytest.mark.parametrize(
    ("selection", "scores", "chosen_by", "selected"),
    [
        ("majority", (5.0, 5.0, 0.1, 0.1, 0.1), "mbr", 2),
        ("weighted", (5.0, 5.0, 0.1, 0.1, 0.1), "mbr", 0),
        ("weighted", (None, None, 1.0, 1.0, 1.0), "mbr", 2),
        ("argmax", (0.1, 0.2, 0.3, 0.9, 0.1), "argmax", 3),
        ("weighted", (None,) * 5, None, None),
    ],
    ids=["majority-ignores-scores", "weighted-by-scores", "unscored-take-no-part",
         "argmax-picks-by-score", "nothing-scored-chooses-nothing"],
)
async def test_best_of_n_free_form(
    selection: str, scores: tuple, chosen_by: str | None, selected: int | None
) -> None:
    strategy = BestOfN(n=5, selection=selection, answers="free_form", verifier=TableVerifier(table=scores))
    result = await strategy.run(PROBLEM, scripted_context(GROUPS))
    assert result.details["chosen_by"] == chosen_by
    assert result.selected_index == selected
    assert result.answer == (GROUPS[selected] if selected is not None else None)
    if selection == "weighted" and chosen_by is not None:
        voted = [s is not None for s in scores]
        assert [s is not None for s in result.details["mbr_similarity"]] == voted
    if chosen_by is None:
        assert result.details["no_choice_reason"] == "no candidates to choose from"


async def test_best_of_n_usc_votes_by_the_models_choice() -> None:
    ctx = scripted_context([*GROUPS, " 5"])
    strategy = BestOfN(n=5, selection="majority", answers="free_form", free_form="usc",
                       verifier=TableVerifier(table=(0.0,) * 5))
    result = await strategy.run(PROBLEM, ctx)
    assert (result.details["chosen_by"], result.selected_index) == ("usc", 4)
    assert result.usage.model_calls == 2


# -- settings that contradict each other are refused --------------------------------------
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: BestOfN(selection="argmax", free_form="usc"), "selection 'argmax' picks the top-scored"),
        (lambda: SelfConsistency(trim=TrimSettings(), answers="free_form"), "with trim the vote is CoT"),
        (lambda: SelfConsistency(format="program", answers="auto"), "format 'program' chains answer"),
        (lambda: SelfConsistency(answers="free"), "answers"),
        (lambda: SelfConsistency(free_form="vote"), "free_form"),
    ],
    ids=["usc-with-argmax", "answers-with-trim", "answers-with-programs", "unknown-answers", "unknown-rule"],
)
def test_contradictions_are_refused(build, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()
