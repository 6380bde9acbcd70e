"""Free-form choice: minimum Bayes risk on hand-made texts, USC's reply parsing and its
budgeted call on the scripted backend, and how answers are read."""

from __future__ import annotations

import random

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Message, Problem
from ponder.core.result import Candidate
from ponder.core.thinking import ThinkingFormat
from ponder.runtime import Run
from ponder.verifiers.free_form import (
    USC_PARAMS,
    USC_REPLY_PREFIX,
    choose_answer,
    mbr_choice,
    named_response,
    reads_free_form,
    similarity,
    split_free_form,
    usc_reply,
)
from ponder.verifiers.judge import problem_text

PROBLEM = Problem(prompt="Describe where the cat is.")
PARAPHRASES = [
    "The cat sat on the mat.",
    "A cat was sitting on the mat.",
    "The cat is sitting on a mat.",
    "Stock prices fell sharply on Monday.",
]


def run_with(script: list[str], budget: Budget | None = None) -> Run:
    return Run(ScriptedBackend.from_script(script), Ledger(budget or Budget()), random.Random(0))


def candidate(index: int, text: str, answer: str | None = None, score: float | None = None) -> Candidate:
    return Candidate(index=index, text=text, num_tokens=len(text), finish_reason="stop",
                     answer=answer, score=score)


# -- minimum Bayes risk ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("texts", "weights", "position"),
    [
        (PARAPHRASES, None, 1),
        (["Paris is the capital of France.", "Stock prices fell sharply on Monday.",
          "The capital of France is Paris.", "France's capital city is Paris."], None, 2),
        (["the cat sat on the mat", "the cat sat on a mat", "a dog ran in the park",
          "a dog ran in a park", "a dog ran"], None, 2),
        (["the cat sat on the mat", "the cat sat on a mat", "a dog ran in the park",
          "a dog ran in a park", "a dog ran"], [5, 5, 0.1, 0.1, 0.1], 0),
        (["same words here", "same words here", "other text", "other text"], None, 0),
        (["aaaa bbbb", "zz"], None, 1),
        (["zz", "yy"], None, 0),
        (["   ", "Hello there"], None, 1),
        (["   ", "\n"], None, 0),
        (["only one"], None, 0),
        (["   "], None, 0),
    ],
    ids=["paraphrases-beat-the-outlier", "medoid-not-first", "larger-group-wins",
         "weights-make-the-other-group-win", "tie-same-length-to-earliest",
         "tie-to-shorter", "tie-equal-length-to-earliest", "tie-blank-loses",
         "all-blank-to-earliest", "single", "single-blank"],
)
def test_mbr_picks_the_medoid(texts: list[str], weights: list[float] | None, position: int) -> None:
    assert mbr_choice(texts, weights).position == position


def test_mbr_reports_each_texts_mean_similarity_and_the_outlier_is_lowest() -> None:
    choice = mbr_choice(PARAPHRASES)
    assert len(choice.similarity) == 4
    assert min(choice.similarity) == choice.similarity[3]
    expected = sum(similarity(PARAPHRASES[1], other) for other in PARAPHRASES if other != PARAPHRASES[1]) / 3
    assert choice.similarity[1] == pytest.approx(expected)


def test_mbr_of_no_texts_chooses_nothing() -> None:
    assert mbr_choice([]) == mbr_choice([], None)
    assert mbr_choice([]).position is None and mbr_choice([]).similarity == []


def test_mbr_is_deterministic_and_independent_of_the_engine() -> None:
    assert mbr_choice(PARAPHRASES) == mbr_choice(list(PARAPHRASES))


@pytest.mark.parametrize(
    ("hypothesis", "reference", "expected"),
    [("   ", "   ", 0.0), ("text", " \n", 0.0), ("", "text", 0.0), ("same", "same", 100.0)],
    ids=["blank-to-itself", "to-blank", "empty", "identical"],
)
def test_similarity_edges(hypothesis: str, reference: str, expected: float) -> None:
    assert similarity(hypothesis, reference) == expected


# -- USC ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "number"),
    [("Response 2", 2), ("2", 2), ("The most consistent is response 3.", 3),
     ("response #4, then 1", 4), ("I cannot tell", None), ("", None), ("9", 9)],
    ids=["response-n", "bare-number", "sentence", "first-named-wins", "none", "empty", "out-of-range-still-parsed"],
)
def test_named_response(reply: str, number: int | None) -> None:
    assert named_response(reply) == number


@pytest.mark.parametrize(
    ("reply", "position", "reason"),
    [(" 2", 1, None), (" 3.", 2, None), (" no. 1", 0, None),
     (" nobody", None, "the reply names no response"),
     (" 9", None, "the reply names response 9 of 3"),
     (" 0", None, "the reply names response 0 of 3")],
    ids=["two", "three", "one-after-words", "names-none", "names-9-of-3", "names-0"],
)
async def test_usc_reads_the_models_reply(reply: str, position: int | None, reason: str | None) -> None:
    ctx = run_with([reply])
    asked = await usc_reply(PROBLEM, PARAPHRASES[:3], ctx)
    assert (asked.position, asked.reply, asked.reason, asked.refused) == (position, reply, reason, False)


async def test_usc_asks_once_greedily_with_numbered_responses_and_is_charged_as_a_model_call() -> None:
    ctx = run_with([" 2"])
    await usc_reply(PROBLEM, PARAPHRASES[:3], ctx)
    [request] = ctx.backend.requests
    assert request.params == USC_PARAMS
    assert request.params.temperature == 0.0 and request.params.max_tokens <= 8
    prompt = ctx.decode(request.prompt_token_ids)
    assert prompt.endswith(USC_REPLY_PREFIX)
    for number, text in enumerate(PARAPHRASES[:3], start=1):
        assert f"Response {number}:\n{text}" in prompt
    assert PROBLEM.prompt in prompt
    assert ctx.ledger.spent.model_calls == 1
    assert ctx.ledger.spent.generated_tokens == 2
    assert ctx.ledger.spent.prompt_tokens == len(request.prompt_token_ids)


async def test_usc_prompt_is_the_same_for_the_same_candidates() -> None:
    first, second = run_with([" 1"]), run_with([" 1"])
    await usc_reply(PROBLEM, PARAPHRASES, first)
    await usc_reply(PROBLEM, PARAPHRASES, second)
    assert first.backend.requests == second.backend.requests


async def test_usc_refused_by_the_budget_makes_no_call_and_says_which_limit() -> None:
    ctx = run_with([], Budget(generated_tokens=4))
    asked = await usc_reply(PROBLEM, PARAPHRASES, ctx)
    assert asked.refused and asked.position is None and asked.reply is None
    assert asked.reason == "the budget (generated_tokens) refused the call"
    assert ctx.backend.requests == [] and ctx.ledger.spent.model_calls == 0


@pytest.mark.parametrize("texts", [[], ["alone"]], ids=["none", "one"])
async def test_usc_with_fewer_than_two_makes_no_call(texts: list[str]) -> None:
    ctx = run_with([])
    asked = await usc_reply(PROBLEM, texts, ctx)
    assert asked.position is None and not asked.refused and ctx.backend.requests == []


@pytest.mark.parametrize(
    ("problem", "question"),
    [(PROBLEM, "Describe where the cat is."),
     (Problem(messages=(Message(role="system", content="Be brief."), Message(role="user", content="first"),
                        Message(role="assistant", content="ok"), Message(role="user", content="second"))),
      "second")],
    ids=["prompt", "last-user-turn"],
)
def test_the_question_usc_shows(problem: Problem, question: str) -> None:
    assert problem_text(problem) == question


# -- reading answers ---------------------------------------------------------------------
LONG = "the answer line ran on into a whole sentence of prose with many words in it"


@pytest.mark.parametrize(
    ("answers", "extracted", "free_form"),
    [
        ("auto", ["42", "42", None, None], False),
        ("auto", ["42", None, None, None], True),
        ("auto", ["42", LONG, LONG, "7"], False),
        ("auto", ["42", LONG, LONG, None], True),
        ("auto", [], False),
        ("extracted", [None, None], False),
        ("free_form", ["42", "42"], True),
    ],
    ids=["half-short-votes", "most-unanswered", "long-answers-are-prose-half", "long-answers-are-prose",
         "nothing-to-read", "extracted-always", "free-form-always"],
)
def test_reads_free_form(answers: str, extracted: list[str | None], free_form: bool) -> None:
    candidates = [candidate(i, f"text {i}", answer) for i, answer in enumerate(extracted)]
    assert reads_free_form(candidates, answers) is free_form  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "thinking", "split"),
    [
        ("  A free reply. ", "plain", ("", "A free reply.")),
        ("Some prose. Answer: Paris", "plain", ("", "Some prose. Answer: Paris")),
        ("<think>hmm</think>\n\nParis it is.", "r1", ("hmm", "Paris it is.")),
        ("<think>still thinking", "r1", ("", "<think>still thinking")),
    ],
    ids=["plain-whole-text", "plain-answer-line-kept", "r1-after-thinking", "r1-unclosed-whole-text"],
)
def test_split_free_form(text: str, thinking: str, split: tuple[str, str]) -> None:
    assert split_free_form(text, ThinkingFormat.model_validate(thinking)) == split


async def test_choose_answer_on_no_candidates_chooses_none_and_says_why() -> None:
    choice = await choose_answer(PROBLEM, [], "majority", run_with([]), answers="free_form",
                                 free_form="usc", thinking=ThinkingFormat())
    assert choice.selected is None
    assert choice.details["chosen_by"] is None
    assert choice.details["no_choice_reason"] == "no candidates to choose from"
