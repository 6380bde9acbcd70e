"""Choosing among free-form answers, where there is no short answer to vote on.

A vote compares answers for equality, which needs answers that can be extracted (a number,
a boxed value, an "Answer:" line). A chat reply, a summary or an explanation has none:
whatever the extractor finds in it (often an incidental number) is no answer, and a vote
over it means nothing. So a free-form answer is the candidate's text itself, and one of two
rules takes the vote's place:

- ``mbr`` (minimum Bayes risk): the candidate most similar, on average, to the others (chrF,
  from sacrebleu): the medoid, the answer the others agree with most. No model call, no
  randomness.
- ``usc`` (universal self-consistency, Chen et al. 2023): the model is shown the numbered
  candidates and names the most consistent one. Its one call goes through the run, so it is
  budgeted and counted as a model call; when the budget refuses it, or the reply names no
  candidate in range, MBR chooses and the details say why.

``choose_answer`` is the one entry for the strategies that vote: it reads the candidates'
answers as ``answers`` says, then votes (``ponder.verifiers.selection``) or chooses by the
free-form rule, and says in ``details["chosen_by"]`` which rule chose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sacrebleu.metrics import CHRF

from ponder.core.generation import SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.core.thinking import ThinkingFormat
from ponder.runtime import Run
from ponder.verifiers.judge import problem_text
from ponder.verifiers.selection import SelectionRule, select

AnswerMode = Literal["auto", "extracted", "free_form"]
"""What a candidate's answer is: what the extractor finds (``extracted``), the candidate's
text (``free_form``), or ``auto``: free-form when fewer than half of the candidates have a
short extracted answer (see ``reads_free_form``)."""
FreeFormRule = Literal["mbr", "usc"]
"""How free-form answers are chosen among where a vote would count equal answers."""

SHORT_ANSWER_WORDS = 12
"""An extracted answer longer than this is prose the answer line ran into, not a value."""

USC_REPLY_PREFIX = "The most consistent response is Response"
"""Written as the start of the model's reply, so that even a small model goes on with a
number (the judge verifier primes its verdict the same way)."""
USC_PARAMS = SamplingParams(n=1, temperature=0.0, max_tokens=8)
"""Greedy and short: the reply is a number, and the same candidates always get the same one."""

_NAMED = re.compile(r"response\s*#?\s*(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")


# -- what a candidate's answer is --------------------------------------------------------
def is_short_answer(answer: str | None) -> bool:
    """An extracted answer that can be voted on: present and at most ``SHORT_ANSWER_WORDS``."""
    return answer is not None and len(answer.split()) <= SHORT_ANSWER_WORDS


def reads_free_form(candidates: Sequence[Candidate], answers: AnswerMode) -> bool:
    """Whether the candidates' answers are their texts. ``auto``: when fewer than half of
    them have a short extracted answer (an empty set has nothing to read: not free-form).
    An answer that only the last-number fallback found counts as extracted; drop
    ``last_number`` from the extractor, or say ``free_form``, where numbers in a reply are
    incidental."""
    if answers != "auto":
        return answers == "free_form"
    return 2 * sum(is_short_answer(c.answer) for c in candidates) < len(candidates)


def split_free_form(text: str, thinking: ThinkingFormat) -> tuple[str, str]:
    """(thinking, free-form answer) of ``text``. Where the format marks where thinking
    starts (r1, qwen3) and the text closes it, the answer is what follows; otherwise the
    whole text is the answer (in the plain format "thinking" is only what precedes an
    "Answer:" line, and a free-form reply has none)."""
    end = thinking.thinking_end(text)
    if thinking.think_start is None or end is None:
        return "", text.strip()
    reasoning, _ = thinking.split(text)
    return reasoning.strip(), text[end + len(thinking.think_end):].strip()


# -- minimum Bayes risk ------------------------------------------------------------------
@dataclass(frozen=True)
class MbrChoice:
    position: int | None
    """The chosen text's position in the texts given; None for no texts."""
    similarity: list[float]
    """Per text, its mean chrF (0-100) to the others, weighted when weights were given."""


def similarity(hypothesis: str, reference: str, chrf: CHRF | None = None) -> float:
    """chrF of ``hypothesis`` against ``reference`` (0-100); a whitespace-only text is 0 to
    everything, itself included (it says nothing to agree with)."""
    if not hypothesis.strip() or not reference.strip():
        return 0.0
    if hypothesis == reference:
        return 100.0
    return (chrf or CHRF()).sentence_score(hypothesis, [reference]).score


def mbr_choice(texts: Sequence[str], weights: Sequence[float] | None = None) -> MbrChoice:
    """The text with the highest mean similarity to the others (each other text counts with
    its weight, 1 unless ``weights`` are given). Ties: a text that is not whitespace-only,
    then the shorter (stripped), then the earlier. One text is chosen as it is."""
    if not texts:
        return MbrChoice(None, [])
    chrf = CHRF()
    given = [1.0] * len(texts) if weights is None else [float(w) for w in weights]
    others = max(len(texts) - 1, 1)
    means = [
        sum(given[j] * similarity(text, texts[j], chrf) for j in range(len(texts)) if j != i)
        / others
        for i, text in enumerate(texts)
    ]
    ranked = round_for_ties(means)
    best = min(
        range(len(texts)),
        key=lambda i: (-ranked[i], not texts[i].strip(), len(texts[i].strip()), i),
    )
    return MbrChoice(best, means)


def round_for_ties(values: Sequence[float]) -> list[float]:
    """Means equal but for float rounding (sums in another order) compare as equal."""
    return [round(value, 9) for value in values]


# -- universal self-consistency ----------------------------------------------------------
@dataclass(frozen=True)
class UscReply:
    position: int | None
    """The named candidate's position (0-based); None when the reply names none in range
    or no call was made."""
    reply: str | None
    """What the model wrote after ``USC_REPLY_PREFIX``; None when no call was made."""
    reason: str | None = None
    """Why there is no position."""
    refused: bool = False
    """The budget refused the call."""


def usc_prompt(question: str, texts: Sequence[str]) -> str:
    """Chen et al.'s prompt, the responses numbered from 1."""
    responses = "\n\n".join(f"Response {i}:\n{text}" for i, text in enumerate(texts, start=1))
    return (
        f"I have generated the following responses to the question: {question}\n\n"
        f"{responses}\n\n"
        "Evaluate these responses.\n"
        "Select the most consistent response based on majority consensus.\n"
        f'Start your answer with "{USC_REPLY_PREFIX} X" (without quotes).'
    )


def named_response(reply: str) -> int | None:
    """The response number a reply names: the first "Response N" in it, else its first
    number ("Response 2", "2", "The most consistent is response 3." name 2, 2, 3)."""
    found = _NAMED.search(reply) or _NUMBER.search(reply)
    if found is None:
        return None
    return int(found.group(1) if found.re is _NAMED else found.group(0))


async def usc_reply(problem: Problem, texts: Sequence[str], ctx: Run) -> UscReply:
    """Ask the model which of ``texts`` is the most consistent: one greedy call through the
    run, charged as a model call. With fewer than two texts there is nothing to ask."""
    if len(texts) < 2:
        return UscReply(None, None, f"{len(texts)} candidate(s): nothing to compare, no call made")
    messages = [{"role": "user", "content": usc_prompt(problem_text(problem), texts)}]
    prompt = ctx.render_chat(messages) + ctx.encode(USC_REPLY_PREFIX)
    state = await ctx.generate(prompt, USC_PARAMS)
    if state is None:
        limit = ctx.ledger.exhausted_by or "a limit"
        return UscReply(None, None, f"the budget ({limit}) refused the call", refused=True)
    reply = state.completions[0].text
    number = named_response(USC_REPLY_PREFIX + reply)
    if number is None:
        return UscReply(None, reply, "the reply names no response")
    if not 1 <= number <= len(texts):
        return UscReply(None, reply, f"the reply names response {number} of {len(texts)}")
    return UscReply(number - 1, reply)


# -- the one entry -----------------------------------------------------------------------
@dataclass
class Choice:
    """A strategy's final choice and the evidence for it."""

    selected: int | None
    """The chosen candidate's ``index``; None when none was chosen."""
    details: dict[str, Any] = field(default_factory=dict)
    budget_refused: bool = False
    """The budget refused work the choice wanted (USC's call); the choice was made without it."""


async def choose_answer(
    problem: Problem,
    candidates: Sequence[Candidate],
    rule: SelectionRule,
    ctx: Run,
    *,
    answers: AnswerMode,
    free_form: FreeFormRule,
    thinking: ThinkingFormat,
) -> Choice:
    """Read the answers as ``answers`` says, then choose by ``rule``; a vote (``majority``,
    ``weighted``) among free-form answers is taken by ``free_form`` instead. Free-form answers
    replace the candidates' extracted ones, which ``details["extracted_answers"]`` keeps.
    Details: ``answers`` (the reading that applied), ``chosen_by`` (the rule that chose;
    None when none could), MBR's ``mbr_similarity`` per candidate (None: took no part),
    USC's ``usc_reply`` and, when USC fell back, ``fallback_reason``."""
    if not reads_free_form(candidates, answers):
        selected, evidence = select(candidates, rule)
        evidence.update(chosen_by=_by(rule, selected))
        return Choice(selected, {"answers": "extracted", **evidence})
    details: dict[str, Any] = {"answers": "free_form"}
    details["extracted_answers"] = [c.answer for c in candidates]
    for candidate in candidates:
        candidate.answer = split_free_form(candidate.text, thinking)[1] or None
    if rule == "argmax":
        selected, evidence = select(candidates, rule)
        return Choice(selected, {**details, **evidence, "chosen_by": _by(rule, selected)})
    voters = [c for c in candidates if rule == "majority" or c.score is not None]
    if not voters:
        details.update(chosen_by=None, no_choice_reason="no candidates to choose from")
        return Choice(None, details)
    texts = [c.answer or "" for c in voters]
    refused = False
    if free_form == "usc":
        asked = await usc_reply(problem, texts, ctx)
        refused = asked.refused
        details["usc_reply"] = asked.reply
        if asked.position is not None:
            return Choice(voters[asked.position].index, {**details, "chosen_by": "usc"})
        details["fallback_reason"] = asked.reason
    weights = [c.score for c in voters if c.score is not None] if rule == "weighted" else None
    mbr = mbr_choice(texts, weights)
    by_index = {c.index: round(s, 3) for c, s in zip(voters, mbr.similarity, strict=True)}
    details["mbr_similarity"] = [by_index.get(c.index) for c in candidates]
    details["chosen_by"] = "usc_fell_back_to_mbr" if free_form == "usc" else "mbr"
    chosen = voters[mbr.position]  # type: ignore[index]  # voters is not empty
    return Choice(chosen.index, details, budget_refused=refused)


def _by(rule: SelectionRule, selected: int | None) -> str | None:
    return rule if selected is not None else None
