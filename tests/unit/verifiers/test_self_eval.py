"""Self-evaluation: P(No) read from the answer token's top logprobs, the question continuing
the chain's own ids (finished or not), the one-token refusal, and budget charging."""

from __future__ import annotations

import math
import random

import pytest
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import FinishReason, GenerationRequest, GenerationState
from ponder.core.problem import DEFAULT_SYSTEM_PROMPT, Problem
from ponder.core.result import Candidate
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies import strategies
from ponder.verifiers.base import verifiers
from ponder.verifiers.self_eval import SelfEvaluation

PROBLEM = Problem(prompt="What is 2 + 2?")
EOS = "$"
ASKED = "Y or N?"
WORDS = {"yes_word": "Y", "no_word": "N"}
"""One character is one scripted token, so the answer words are single letters."""


class AnswerBackend(ScriptedBackend):
    """Scripted, with "$" as end of sequence and the answer token's top logprobs set from a
    table: the first key found in the prompt gives {token: probability}."""

    def __init__(self, answers: dict[str, dict[str, float]]) -> None:
        super().__init__(lambda request, sample, call: ScriptedSample("?"))
        self.answers = answers
        self.in_flight = self.most_in_flight = 0

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return (ord(EOS),)

    async def generate(self, request: GenerationRequest, **kwargs: object) -> GenerationState:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        state = await super().generate(request, **kwargs)  # type: ignore[arg-type]
        self.in_flight -= 1
        prompt = self.decode(request.prompt_token_ids)
        top = next(top for key, top in self.answers.items() if key in prompt)
        state.completions[0].top_logprobs = [{ord(t): math.log(p) for t, p in top.items()}]
        return state


def _context(backend: ScriptedBackend, budget: Budget | None = None) -> Run:
    return Run(backend, Ledger(budget or Budget()), random.Random(0))


def _chain(
    index: int, text: str, finish: FinishReason | None = "stop", ids: str | None = None
) -> Candidate:
    """A chain whose token ids spell ``ids`` (its text, when not given)."""
    spelt = ids if ids is not None else text
    return Candidate(
        index=index, text=text, num_tokens=len(spelt), finish_reason=finish,
        token_ids=[ord(ch) for ch in spelt],
    )


SELF_EVAL = SelfEvaluation(question=f"\n{ASKED}", **WORDS)


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param({"N": 0.6, "Y": 0.2, "?": 0.2}, 0.75, id="no-over-yes-and-no"),
        pytest.param({"N": 0.3, "n": 0.1, "Y": 0.4}, 0.5, id="cases-summed"),
        pytest.param({"N": 0.05, "?": 0.95}, 1.0, id="only-no"),
        pytest.param({"Y": 0.05, "?": 0.95}, 0.0, id="only-yes"),
    ],
)
async def test_the_score_is_p_no_over_p_yes_and_no(top: dict[str, float], expected: float) -> None:
    backend = AnswerBackend({"": top})
    (score,) = await SELF_EVAL.score(PROBLEM, [_chain(0, "It is 4.")], _context(backend))
    assert score.value == pytest.approx(expected)


async def test_neither_word_in_the_top_logprobs_gives_no_score_and_says_why() -> None:
    backend = AnswerBackend({"": {"?": 0.9, "!": 0.1}})
    (score,) = await SELF_EVAL.score(PROBLEM, [_chain(0, "It is 4.")], _context(backend))
    assert score.value is None
    assert score.reason == "judge gave neither y nor n in its top 20"


async def test_every_chain_is_asked_at_once_after_its_own_ids_and_charged() -> None:
    backend = AnswerBackend({"It is 4": {"N": 0.9, "Y": 0.1}, "It is": {"N": 0.2, "Y": 0.8}})
    ctx = _context(backend)
    chains = [
        _chain(0, "It is 4.", ids="It is 4." + EOS),  # finished: the closing EOS is dropped
        _chain(1, "It is", finish="length"),  # unfinished: scored as it stands
        _chain(2, "It is 5.", finish=None, ids="It is 5?"),  # the ids, not the text, are read
    ]
    scores = await SELF_EVAL.score(PROBLEM, chains, ctx)

    assert [s.value for s in scores] == pytest.approx([0.9, 0.2, 0.2])
    assert backend.most_in_flight == 3
    prompt = backend.render(PROBLEM, DEFAULT_SYSTEM_PROMPT)
    question = backend.encode(f"\n{ASKED}")
    assert [list(r.prompt_token_ids) for r in backend.requests] == [
        prompt + backend.encode(chain) + question for chain in ("It is 4.", "It is", "It is 5?")
    ]
    assert all(r.params.max_tokens == 1 and r.params.logprobs == 20 for r in backend.requests)
    spent = ctx.ledger.spent
    assert (spent.generated_tokens, spent.verifier_calls, spent.model_calls) == (3, 3, 0)
    assert spent.prompt_tokens == sum(len(r.prompt_token_ids) for r in backend.requests)


async def test_a_chain_without_ids_is_encoded_from_its_text() -> None:
    backend = AnswerBackend({"": {"N": 1.0}})
    chain = Candidate(index=0, text="It is 4.", num_tokens=3, finish_reason="stop")
    await SELF_EVAL.score(PROBLEM, [chain], _context(backend))
    assert backend.decode(backend.requests[0].prompt_token_ids).endswith(f"It is 4.\n{ASKED}")


@pytest.mark.parametrize(
    ("words", "named", "not_named"),
    [
        pytest.param({}, ["yes_word='Yes' is 3 tokens", "no_word='No' is 2 tokens"], [], id="both"),
        pytest.param({"yes_word": "Y"}, ["no_word='No' is 2 tokens"], ["yes_word="], id="no"),
        pytest.param({"no_word": "N"}, ["yes_word='Yes' is 3 tokens"], ["no_word="], id="yes"),
    ],
)
async def test_an_answer_word_of_several_tokens_is_refused_naming_the_field(
    words: dict[str, str], named: list[str], not_named: list[str]
) -> None:
    backend = AnswerBackend({"": {"N": 1.0}})
    with pytest.raises(BadRequestError) as caught:
        await SelfEvaluation(**words).score(PROBLEM, [_chain(0, "It is 4.")], _context(backend))
    message = str(caught.value)
    assert all(part in message for part in named)
    assert not any(part in message for part in not_named)
    assert "must be one token" in message
    assert backend.requests == []


def test_the_same_word_for_yes_and_no_is_refused_at_construction() -> None:
    with pytest.raises(ValidationError, match="yes_word and no_word must be different words"):
        SelfEvaluation(yes_word="No", no_word=" no")


async def test_tokens_the_budget_cannot_hold_are_not_sent() -> None:
    backend = AnswerBackend({"": {"N": 1.0}})
    ctx = _context(backend, Budget(total_tokens=10))
    scores = await SELF_EVAL.score(PROBLEM, [_chain(0, "It is 4."), _chain(1, "It is 5.")], ctx)
    assert all(s.value is None and "not self-evaluated: total_tokens" in s.reason for s in scores)
    assert backend.requests == []
    assert ctx.ledger.spent.total_tokens == 0


def test_it_is_built_by_name_and_may_score_the_steps_of_a_search() -> None:
    assert isinstance(verifiers.build({"name": "self_eval", "no_word": "Nope"}), SelfEvaluation)
    beam = strategies.build({"name": "beam", "verifier": {"name": "self_eval"}})
    assert isinstance(beam.verifier, SelfEvaluation)  # the graph takes it as a step scorer
