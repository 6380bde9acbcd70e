"""LLM judges: verdict arithmetic from top logprobs, template checks at construction, and
scripted runs that pin batching and budget charging."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.core.problem import Message, Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Verifier, verifiers
from ponder.verifiers.judge import LLMJudge, StepJudge
from ponder.verifiers.judge_scoring import digit_score, yes_no_score

VOCAB = {
    1: "Yes", 2: " yes", 3: " YES", 4: "No", 5: " no", 6: "The", 7: "3", 8: " 7", 9: "7", 10: "10"
}


def _top(**probabilities: float) -> dict[int, float]:
    """Top logprobs from probabilities keyed by ``t<id>``."""
    return {int(key[1:]): math.log(p) for key, p in probabilities.items()}


def _decode(token_id: int) -> str:
    return VOCAB[token_id]


# -- arithmetic -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param(_top(t1=0.3, t2=0.1, t4=0.2, t6=0.4), 0.4 / 0.6, id="variants-summed"),
        pytest.param(_top(t3=0.2, t5=0.2), 0.5, id="upper-and-lower-case"),
        pytest.param(_top(t1=0.1, t6=0.9), 1.0, id="only-yes"),
        pytest.param(_top(t4=0.05, t6=0.9), 0.0, id="only-no"),
    ],
)
def test_yes_no_is_yes_mass_over_yes_and_no_mass(top: dict[int, float], expected: float) -> None:
    assert yes_no_score(top, _decode).value == pytest.approx(expected)


def test_yes_no_without_either_word_has_no_score_and_says_why() -> None:
    score = yes_no_score(_top(t6=0.9, t7=0.1), _decode)
    assert score.value is None
    assert score.reason == "judge gave neither yes nor no in its top 20"


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param(
            _top(t7=0.2, t8=0.3, t9=0.3, t6=0.2), (3 * 0.2 + 7 * 0.6) / 0.8 / 9, id="renormalised"
        ),
        pytest.param(_top(t7=0.01, t6=0.99), 3 / 9, id="one-digit"),
        pytest.param(_top(t9=0.5, t10=0.5), 7 / 9, id="two-digit-token-ignored"),
    ],
)
def test_digit_is_expected_digit_over_nine(top: dict[int, float], expected: float) -> None:
    assert digit_score(top, _decode).value == pytest.approx(expected)


def test_digit_without_any_digit_has_no_score_and_says_why() -> None:
    score = digit_score(_top(t1=0.5, t6=0.5), _decode)
    assert score.value is None
    assert score.reason == "judge gave no digit 0-9 in its top 20"


# -- templates --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("judge", "template", "message"),
    [
        pytest.param(LLMJudge, "{problem}", "missing the placeholder {solution}", id="missing"),
        pytest.param(
            LLMJudge, "{problem} {solution} {answer}", "unknown placeholder {answer}", id="unknown"
        ),
        pytest.param(LLMJudge, "{problem} {solution} {}", "placeholder {}", id="positional"),
        pytest.param(
            StepJudge, "{problem} {step}", "missing the placeholder {previous_steps}", id="step"
        ),
        pytest.param(
            StepJudge,
            "{problem} {previous_steps} {step} {solution}",
            "unknown placeholder {solution}",
            id="step-unknown",
        ),
        pytest.param(LLMJudge, "{problem} {solution", "not a valid format string", id="malformed"),
    ],
)
def test_a_bad_template_fails_at_construction_naming_field_and_placeholder(
    judge: type[Verifier], template: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        judge(template=template)
    (error,) = caught.value.errors()
    assert error["loc"] == ("template",)
    assert message in error["msg"]


def test_literal_braces_are_not_placeholders() -> None:
    judge = LLMJudge(template='{problem} {solution} Reply as {{"verdict": "Yes"}}.')
    assert judge.template is not None


def test_the_registry_builds_both_judges_from_configs() -> None:
    assert isinstance(verifiers.build({"name": "llm_judge", "mode": "digit"}), LLMJudge)
    assert isinstance(verifiers.build({"name": "step_judge", "aggregation": "min"}), StepJudge)


# -- scripted runs ----------------------------------------------------------------------------
YES, NO = "\u2713", "\u2717"
"""One-character verdict tokens that no prompt contains."""


class VerdictBackend(ScriptedBackend):
    """Scripted, with the one-character tokens YES and NO reading as the words a real
    tokenizer has as single tokens, and a log of submissions and completions."""

    WORDS = {YES: " Yes", NO: "No"}

    def __init__(self, verdict: dict[str, str], delay: float = 0.0) -> None:
        super().__init__(self._verdict)
        self.verdict = verdict
        """Substring of the prompt -> the one-character verdict to give."""
        self.delay = delay
        self.events: list[str] = []

    def _verdict(self, request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        prompt = self.decode(request.prompt_token_ids)
        text = next(v for key, v in self.verdict.items() if key in prompt)
        return ScriptedSample(text * 3, logprobs=[-0.5] * 3, delay=self.delay)  # 1 token kept

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(self.WORDS.get(chr(t), chr(t)) for t in token_ids)

    async def generate(self, request: GenerationRequest, **kwargs: object) -> GenerationState:
        self.events.append("submitted")
        state = await super().generate(request, **kwargs)  # type: ignore[arg-type]
        self.events.append("finished")
        return state


def _context(backend: ScriptedBackend, budget: Budget | None = None) -> Run:
    return Run(backend, Ledger(budget or Budget()), random.Random(0))


def _candidates(*texts: str) -> list[Candidate]:
    return [
        Candidate(index=i, text=t, num_tokens=len(t), finish_reason="stop")
        for i, t in enumerate(texts)
    ]


PROBLEM = Problem(prompt="What is 2 + 2?")
CHAT_PROBLEM = Problem(
    messages=(Message(role="system", content="s"), Message(role="user", content="Sum 1 and 2."))
)


async def test_outcome_judge_submits_all_prompts_at_once_and_charges_tokens_not_calls() -> None:
    backend = VerdictBackend({"It is 4": YES, "It is 5": NO, "It is 6": "?"})
    ctx = _context(backend)
    judge = LLMJudge(system_prompt="Be strict.")
    scores = await judge.score(PROBLEM, _candidates("It is 4", "It is 5", "It is 6"), ctx)

    assert [s.value for s in scores] == [1.0, 0.0, None]
    assert scores[2].reason == "judge gave neither yes nor no in its top 20"
    assert backend.events == ["submitted"] * 3 + ["finished"] * 3
    prompt = backend.decode(backend.requests[0].prompt_token_ids)
    assert prompt.startswith("system: Be strict.\nuser: Problem: What is 2 + 2?")
    assert prompt.endswith("Reply with Yes or No.\nassistant: Answer:")
    assert all(r.params.max_tokens == 1 and r.params.logprobs == 20 for r in backend.requests)
    spent = ctx.ledger.spent
    assert spent.prompt_tokens == sum(len(r.prompt_token_ids) for r in backend.requests)
    assert spent.generated_tokens == 3
    assert spent.verifier_calls == 3
    assert spent.model_calls == 0


async def test_digit_mode_reads_the_expected_grade() -> None:
    backend = VerdictBackend({"It is 4": "9", "It is 5": "3"})
    judge = LLMJudge(mode="digit")
    scores = await judge.score(PROBLEM, _candidates("It is 4", "It is 5"), _context(backend))
    assert [s.value for s in scores] == pytest.approx([1.0, 3 / 9])
    prompt = backend.decode(backend.requests[0].prompt_token_ids)
    assert prompt.endswith("to 9 (surely right).\nassistant: Answer: ")  # a digit follows a space


async def test_step_judge_scores_every_step_of_every_path_in_one_batch() -> None:
    backend = VerdictBackend({"Next step: 2 + 2 = 5": NO, "Next step:": YES})
    ctx = _context(backend)
    paths = _candidates("2 + 2 = 4\n\nSo 4.", "Add.\n\n2 + 2 = 5\n\nSo 5.")
    scores = await StepJudge(aggregation="min").score(PROBLEM, paths, ctx)

    assert [s.steps for s in scores] == [(1.0, 1.0), (1.0, 0.0, 1.0)]
    assert [s.value for s in scores] == [1.0, 0.0]
    assert backend.events == ["submitted"] * 5 + ["finished"] * 5
    prompts = [backend.decode(r.prompt_token_ids) for r in backend.requests]
    assert "Previous steps:\n(none)\n\nNext step: Add." in prompts[2]
    assert "Previous steps:\nAdd.\n2 + 2 = 5\n\nNext step: So 5." in prompts[4]
    assert ctx.ledger.spent.verifier_calls == 2
    assert ctx.ledger.spent.generated_tokens == 5
    assert ctx.ledger.spent.model_calls == 0


async def test_a_growing_path_has_only_its_new_step_judged() -> None:
    backend = VerdictBackend({"Next step:": YES})
    ctx = _context(backend)
    judge = StepJudge()
    await judge.score(PROBLEM, _candidates("Add.\n\n2 + 2 = 4"), ctx)
    scores = await judge.score(PROBLEM, _candidates("Add.\n\n2 + 2 = 4\n\nSo 4."), ctx)

    assert scores[0].steps == (1.0, 1.0, 1.0)
    assert len(backend.requests) == 3  # two steps, then only the third
    assert "Next step: So 4." in backend.decode(backend.requests[2].prompt_token_ids)
    assert ctx.ledger.spent.verifier_calls == 2


@pytest.mark.parametrize("judge", [LLMJudge(), StepJudge()], ids=["outcome", "step"])
async def test_a_refused_reservation_scores_nothing_and_sends_nothing(judge: Verifier) -> None:
    backend = VerdictBackend({"": YES})
    ctx = _context(backend, Budget(total_tokens=10))
    scores = await judge.score(PROBLEM, _candidates("It is 4", "It is 5"), ctx)
    assert all(s.value is None and "not judged: total_tokens budget" in s.reason for s in scores)
    assert backend.requests == []
    assert ctx.ledger.spent.total_tokens == 0


@pytest.mark.parametrize(
    ("judge", "problem", "prompt_end"),
    [
        pytest.param(LLMJudge(answer_prefix=""), PROBLEM, "No.\nassistant: ", id="no-prefix"),
        pytest.param(
            LLMJudge(answer_prefix="Verdict:"), PROBLEM, "assistant: Verdict:", id="custom-prefix"
        ),
        pytest.param(
            LLMJudge(template="Q: {problem} A: {solution}"),
            CHAT_PROBLEM,
            "user: Q: Sum 1 and 2. A: It is 3\nassistant: Answer:",
            id="template-and-chat-problem",
        ),
    ],
)
async def test_the_prompt_ends_where_the_verdict_token_starts(
    judge: LLMJudge, problem: Problem, prompt_end: str
) -> None:
    backend = VerdictBackend({"": YES})
    await judge.score(problem, _candidates("It is 3"), _context(backend))
    assert backend.decode(backend.requests[0].prompt_token_ids).endswith(prompt_end)


async def test_a_judge_cut_by_the_budget_clock_says_so() -> None:
    backend = VerdictBackend({"": YES}, delay=5.0)
    ctx = _context(backend, Budget(seconds=0.05))
    (score,) = await LLMJudge().score(PROBLEM, _candidates("It is 4"), ctx)
    assert score.value is None
    assert score.reason == "the judge returned no token logprobs (the budget's time ran out)"
    assert ctx.ledger.spent.prompt_tokens == len(backend.requests[0].prompt_token_ids)
