"""Speculative reasoning on scripted backends: drafts kept or rewritten by the threshold, the
rating prompt on the chain's own prefix, the usage split, text mode across vocabularies,
the answer after the thinking, limits, budgets and bad input."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Sequence

import pytest
from pydantic import ValidationError

from ponder.backends.base import Backend
from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.core.problem import Problem
from ponder.core.thinking import ThinkingFormat
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.strategies import SamplingConfig, SpecReason, strategies
from ponder.strategies.step_generators import (
    DEFAULT_JUDGE_INSTRUCTION,
    Prefix,
    SpeculativeSteps,
    StepGenerator,
    judge_turn,
    same_vocabulary,
)

PROBLEM = Problem(prompt="What is 6 times 2?")
REPLY = "Score: "
OFFSET = 1000


def _text(request: GenerationRequest) -> str:
    return "".join(chr(token % OFFSET) for token in request.prompt_token_ids)


def is_rating(request: GenerationRequest) -> bool:
    return _text(request).endswith(REPLY)


class ScriptedBase:
    """The scripted base model: rating prompts get the next rating, others the next step."""

    def __init__(self, ratings: Sequence[str] = (), steps: Sequence[str | ScriptedSample] = ()):
        self.ratings, self.steps = list(ratings), list(steps)
        self.log: list[str] = []

    def __call__(self, request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        if is_rating(request):
            self.log.append("rate")
            return ScriptedSample(self.ratings.pop(0))
        self.log.append("base")
        step = self.steps.pop(0)
        return step if isinstance(step, ScriptedSample) else ScriptedSample(step)


class Shifted(Backend):
    """A scripted model with another vocabulary: the same text, every token id + OFFSET. Ids
    from the wrong vocabulary fail here (their characters do not exist)."""

    def __init__(self, inner: ScriptedBackend) -> None:
        super().__init__()
        self.inner = inner

    def encode(self, text: str) -> list[int]:
        return [token + OFFSET for token in self.inner.encode(text)]

    def decode(self, token_ids: Sequence[int]) -> str:
        if any(token < OFFSET for token in token_ids):
            raise ValueError(f"not a token of this vocabulary: {min(token_ids)}")
        return self.inner.decode([token - OFFSET for token in token_ids])

    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return [token + OFFSET for token in self.inner.render_chat(messages)]

    async def _stream(
        self, request: GenerationRequest, state: GenerationState
    ) -> AsyncIterator[None]:
        self.decode(request.prompt_token_ids)  # refuses ids of another vocabulary
        inner = GenerationRequest(
            prompt_token_ids=tuple(t - OFFSET for t in request.prompt_token_ids),
            params=request.params,
        )
        inner_state = GenerationState.start(inner)
        async for _ in self.inner.stream(inner, inner_state):
            for mine, theirs in zip(state.completions, inner_state.completions):
                mine.token_ids = [t + OFFSET for t in theirs.token_ids]
                mine.text, mine.finish_reason = theirs.text, theirs.finish_reason
                mine.stop_reason = theirs.stop_reason
            yield


def context(base: ScriptedBase, budget: Budget | None = None, block_size: int = 1) -> Run:
    backend = ScriptedBackend(base, block_size=block_size)
    return Run(backend, Ledger(budget or Budget()), random.Random(0))


def spec(draft: Backend | None, threshold: float = 7.0, **options: object) -> SpecReason:
    return SpecReason(
        steps=SpeculativeSteps(draft=draft, threshold=threshold),
        sampling=options.pop("sampling", SamplingConfig(max_tokens=400)),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


# -- accept and reject ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rating", "threshold", "kept"),
    [
        ("8", 7.0, True),
        ("7", 7.0, True),
        ("6", 7.0, False),
        ("9", 9.0, True),
        ("0", 0.0, True),
        ("2", 2.5, False),
        ("x", 0.0, False),
    ],
    ids=["above", "at-threshold", "below", "nine-needs-nine", "zero-keeps-all", "fraction",
         "no-digit-rejects"],
)
async def test_a_draft_is_kept_at_or_above_the_threshold_else_the_base_writes_the_step(
    rating: str, threshold: float, kept: bool
) -> None:
    draft = ScriptedBackend.from_script(["6 times 2 is 8.\n\nmore", "Answer: 12"])
    base = ScriptedBase(ratings=[rating, "9"], steps=["6 times 2 is 12.\n\n"])
    ctx = context(base)
    result = await spec(draft, threshold).run(PROBLEM, ctx)
    first = "6 times 2 is 8.\n\n" if kept else "6 times 2 is 12.\n\n"
    assert result.candidates[0].text == first + "Answer: 12"
    assert result.answer == "12"
    assert base.log == (["rate", "rate"] if kept else ["rate", "base", "rate"])
    details = result.details
    assert (details["accepted_steps"], details["rejected_steps"]) == ((2, 0) if kept else (1, 1))
    assert details["acceptance_rate"] == (1.0 if kept else 0.5)
    assert details["unrated_steps"] == (rating == "x")
    assert details["base_tokens_kept"] == (0 if kept else len(first))
    assert details["draft_tokens_kept"] == len("Answer: 12") + (len(first) if kept else 0)


async def test_the_base_rewrites_from_the_same_prefix_without_the_rejected_draft() -> None:
    draft = ScriptedBackend.from_script(["Step one.\n\n", "6 times 2 is 8.\n\n", "Answer: 12"])
    base = ScriptedBase(ratings=["9", "1", "9"], steps=["6 times 2 is 12.\n\n"])
    ctx = context(base)
    result = await spec(draft).run(PROBLEM, ctx)
    rewrite = next(r for r in ctx.backend.requests if not is_rating(r))
    assert rewrite.prompt_token_ids == draft.requests[1].prompt_token_ids
    assert _text(rewrite).endswith("assistant: Step one.\n\n")
    assert _text(draft.requests[2]).endswith("Step one.\n\n6 times 2 is 12.\n\n")
    assert result.candidates[0].text == "Step one.\n\n6 times 2 is 12.\n\nAnswer: 12"


async def test_the_rating_prompt_is_the_chain_then_the_step_then_the_judge_turn() -> None:
    steps = ["First step here.\n\n", "Second step.\n\n"]
    draft = ScriptedBackend.from_script(steps)
    ctx = context(ScriptedBase(ratings=["8", "8"]), block_size=4)
    generator = SpeculativeSteps(draft=draft)
    session = await generator.open(
        PROBLEM, ctx, step=StepConfig(), sampling=SamplingConfig(), system_prompt=None,
        thinking=ThinkingFormat(),
    )
    turn = ctx.backend.decode(session.judge_turn)
    assert turn == f"\nuser: {DEFAULT_JUDGE_INSTRUCTION}\nassistant: {REPLY}"
    first = await session.next_step(session.root, max_tokens=100)
    second = await session.next_step(session.root.extend(first), max_tokens=100)
    ratings = ctx.backend.requests
    assert ratings[0].prompt_token_ids == session.root.base + first.token_ids + session.judge_turn
    chain = session.root.base + first.token_ids + second.token_ids
    assert ratings[1].prompt_token_ids == chain + session.judge_turn
    # The second rating reuses the cached chain (whole blocks of 4 tokens), not the first turn.
    shared = len(session.root.base + first.token_ids)
    assert second.usage["judge"].cached_prompt_tokens == shared // 4 * 4
    assert (first.rating, second.rating) == (8.0, 8.0)
    assert first.usage["judge"].generated_tokens == 1


async def test_the_rated_step_drops_a_closing_end_of_sequence() -> None:
    class EndsWithBar(ScriptedBackend):
        eos_token_ids = (ord("|"),)  # type: ignore[assignment]

    draft = EndsWithBar.from_script(["Answer: 12|"])
    base = EndsWithBar(ScriptedBase(ratings=["9"]))
    ctx = Run(base, Ledger(Budget()), random.Random(0))
    result = await spec(draft).run(PROBLEM, ctx)
    assert _text(base.requests[0]).startswith(_text(draft.requests[0]) + "Answer: 12\nuser:")
    assert result.candidates[0].text == "Answer: 12|"  # the chain keeps what was written


async def test_plain_steps_are_sampled_by_the_base_model() -> None:
    ctx = context(ScriptedBase(steps=["Six twice.\n\nnot this", "Answer: 12"]))
    session = await StepGenerator().open(
        PROBLEM, ctx, step=StepConfig(max_step_tokens=5), sampling=SamplingConfig(),
        system_prompt=None, thinking=ThinkingFormat(),
    )
    first = await session.next_step(session.root, max_tokens=100)
    assert (first.text, first.author, first.finish_reason) == ("Six t", "base", "length")
    assert set(first.usage) == {"base"} and first.rating is None and not first.judged
    second = await session.next_step(session.root.extend(first), max_tokens=100)
    assert ctx.backend.requests[1].prompt_token_ids == session.root.base + first.token_ids
    assert (second.text, second.ends_chain) == ("Answe", False)


# -- usage ------------------------------------------------------------------------------------
async def test_usage_adds_up_across_draft_judge_and_base() -> None:
    draft = ScriptedBackend.from_script(["Two sixes.\n\n", "Wrong step.\n\n", "Answer: 12"])
    base = ScriptedBase(ratings=["9", "3", "8"], steps=["Six and six.\n\n"])
    result = await spec(draft).run(PROBLEM, ctx := context(base))
    usage, details = result.usage, result.details
    assert details["draft_generated_tokens"] == len("Two sixes.\n\nWrong step.\n\nAnswer: 12")
    assert details["base_generated_tokens"] == len("Six and six.\n\n")
    assert details["judge_generated_tokens"] == details["judge_calls"] == 3
    assert usage.generated_tokens == (
        details["draft_generated_tokens"] + details["base_generated_tokens"]
        + details["judge_generated_tokens"]
    )
    assert usage.model_calls == len(draft.requests) + 1  # three drafts, one rewrite
    assert usage.verifier_calls == 3
    every_prompt = [*draft.requests, *ctx.backend.requests]
    assert usage.prompt_tokens == sum(len(r.prompt_token_ids) for r in every_prompt)
    # Thinking: every step before "Answer:", the rejected draft included; not the ratings.
    assert usage.thinking_tokens == len("Two sixes.\n\nWrong step.\n\nSix and six.\n\n")
    assert result.candidates[0].thinking_tokens == len("Two sixes.\n\nSix and six.\n\n")
    assert details["ended_by"] == {"answer": 1}


async def test_after_the_thinking_the_base_writes_the_whole_answer() -> None:
    draft = ScriptedBackend.from_script(["<think>6 and 6 make 12.\n\n", "</think>\n\n"])
    base = ScriptedBase(ratings=["9", "9"], steps=["The product is 12.\n\nSo \\boxed{12}."])
    ctx = context(base)
    result = await spec(draft, thinking="r1").run(PROBLEM, ctx)
    answer_call = ctx.backend.requests[-1]
    assert answer_call.params.stop == ()  # the delimiter does not cut the answer
    assert _text(answer_call).endswith("</think>\n\n")
    candidate = result.candidates[0]
    assert candidate.text.endswith("</think>\n\nThe product is 12.\n\nSo \\boxed{12}.")
    assert result.answer == "12"
    assert candidate.thinking_tokens == len("<think>6 and 6 make 12.\n\n")
    assert result.usage.thinking_tokens == len("<think>6 and 6 make 12.\n\n")
    assert result.details["base_generated_tokens"] == len("The product is 12.\n\nSo \\boxed{12}.")
    assert result.details["steps"] == 3 and result.details["judge_calls"] == 2


async def test_drafting_for_itself_the_rewrite_uses_another_seed() -> None:
    base = ScriptedBase(ratings=["1", "9"], steps=["Six twice.\n\n", "Twelve.\n\n", "Answer: 12"])
    ctx = context(base)
    result = await spec(None).run(PROBLEM, ctx)
    draft_call, _, rewrite, *_ = ctx.backend.requests
    assert rewrite.prompt_token_ids == draft_call.prompt_token_ids
    assert rewrite.params.seed == draft_call.params.seed + 1
    assert result.candidates[0].text == "Twelve.\n\nAnswer: 12"
    assert result.details["shared_token_ids"] is True


# -- vocabularies -----------------------------------------------------------------------------
async def test_a_draft_with_another_vocabulary_works_on_text() -> None:
    draft = Shifted(ScriptedBackend.from_script(["Two sixes.\n\n", "Bad step.\n\n", "Answer: 12"]))
    base = ScriptedBase(ratings=["9", "2", "9"], steps=["Six plus six.\n\n"])
    ctx = context(base)
    result = await spec(draft).run(PROBLEM, ctx)
    assert result.details["shared_token_ids"] is False
    assert all(t < OFFSET for r in ctx.backend.requests for t in r.prompt_token_ids)
    draft_prompts = [draft.inner.requests[i] for i in range(3)]  # inner ids: shifted back
    assert _text(draft_prompts[2]).endswith("assistant: Two sixes.\n\nSix plus six.\n\n")
    candidate = result.candidates[0]
    assert candidate.text == "Two sixes.\n\nSix plus six.\n\nAnswer: 12"
    assert candidate.token_ids == ctx.backend.encode(candidate.text)  # the base's vocabulary
    assert result.usage.generated_tokens == sum(
        result.details[f"{role}_generated_tokens"] for role in ("draft", "base", "judge")
    )


def test_vocabularies_are_compared_on_a_probe() -> None:
    scripted = ScriptedBackend.from_script([])

    def on(backend: ScriptedBackend) -> Run:
        return Run(backend=backend, ledger=Ledger(Budget()))

    assert same_vocabulary(on(scripted), on(ScriptedBackend.from_script([])))
    assert not same_vocabulary(on(scripted), on(Shifted(scripted)))


def test_a_template_that_rewrites_earlier_turns_gets_the_instruction_as_text() -> None:
    class CountsTurns(ScriptedBackend):
        def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
            return self.encode(f"[{len(messages)} turns]") + super().render_chat(messages)

    backend = CountsTurns.from_script([])
    ctx = Run(backend=backend, ledger=Ledger(Budget()))
    turn = judge_turn(ctx, [{"role": "user", "content": "Hi"}], "Rate it.", "Score: ")
    assert backend.decode(turn) == "\n\nRate it.\nScore: "


# -- limits and budgets -----------------------------------------------------------------------
async def test_max_steps_ends_a_chain_that_never_answers() -> None:
    draft = ScriptedBackend.from_script(["Think.\n\n"] * 5)
    result = await spec(draft, max_steps=3).run(PROBLEM, context(ScriptedBase(ratings=["9"] * 5)))
    candidate = result.candidates[0]
    assert candidate.text == "Think.\n\n" * 3 and candidate.finish_reason == "length"
    assert result.details["ended_by"] == {"max_steps": 1}
    assert not result.budget_exhausted


async def test_the_chain_token_limit_shrinks_the_last_step() -> None:
    draft = ScriptedBackend.from_script(["Think a.\n\n"] * 3)
    result = await spec(draft, sampling=SamplingConfig(max_tokens=24)).run(
        PROBLEM, context(ScriptedBase(ratings=["9"] * 3))
    )
    candidate = result.candidates[0]
    assert candidate.text == "Think a.\n\nThink a.\n\nThin"
    assert candidate.num_tokens == 24 and result.details["ended_by"] == {"max_tokens": 1}


async def test_a_budget_that_cannot_pay_for_the_rating_ends_the_chain_and_says_so() -> None:
    draft = ScriptedBackend.from_script(["Twenty characters.\n\n", "Never judged."])
    budget = Budget(generated_tokens=25)
    result = await spec(draft).run(PROBLEM, ctx := context(ScriptedBase(ratings=["9"]), budget))
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert result.usage.generated_tokens == 25  # 20 + 1 rating + 4 drafted, never rated
    assert result.candidates[0].text == "Twenty characters.\n\n"
    assert result.details["ended_by"] == {"budget": 1}
    assert result.details["draft_generated_tokens"] == 24  # the cut draft is counted
    assert len(ctx.backend.requests) == 1


async def test_the_clock_aborts_a_slow_draft_and_counts_its_tokens() -> None:
    draft = ScriptedBackend.from_script([ScriptedSample("slow " * 40, delay=0.01)])
    result = await spec(draft).run(
        PROBLEM, context(ScriptedBase(), Budget(seconds=0.1))
    )
    assert result.budget_exhausted and result.exhausted_by == "seconds"
    assert result.candidates[0].text == ""
    assert 0 < result.usage.cancelled_tokens == result.usage.generated_tokens < 200
    assert result.details["ended_by"] == {"seconds": 1}


async def test_n_chains_grow_concurrently_and_vote() -> None:
    base = ScriptedBase(ratings=["9"] * 3)
    order = base.log

    def drafts(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        order.append("draft")
        return ScriptedSample(["Answer: 5", "Answer: 7", "Answer: 5"][call], delay=0.001)

    result = await spec(ScriptedBackend(drafts), n=3).run(PROBLEM, context(base))
    assert order[:3] == ["draft"] * 3  # every chain drafted before any rating
    assert [c.answer for c in result.candidates] == ["5", "7", "5"]
    assert result.answer == "5" and result.details["votes"] == {"5": 2, "7": 1}


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("threshold", 9.5, "less than or equal to 9"),
        ("threshold", -1, "greater than or equal to 0"),
        ("threshold", math.nan, "finite number"),
        ("draft", {"kind": "grpc"}, "draft kind must be one of vllm, openai"),
    ],
    ids=["threshold-above-9", "threshold-negative", "threshold-nan", "unknown-draft-kind"],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=rf"strategy\.steps\.{field}: .*{message}"):
        strategies.build({"name": "spec_reason", "steps": {field: value}})
    with pytest.raises(ValidationError):
        SpeculativeSteps(**{field: value})


@pytest.mark.parametrize(
    ("field", "value", "moved_to"),
    [("max_step_tokens", 32, "step.max_step_tokens"), ("step_delimiter", "###", "step.delimiters")],
)
def test_step_limits_on_the_generator_are_refused_naming_the_step_config(
    field: str, value: object, moved_to: str
) -> None:
    """Where a step ends has one home, the strategy's step config; the old generator fields
    are refused with the place to set them, never ignored."""
    with pytest.raises(BadRequestError, match=rf"strategy\.steps: .*{field}.*set {moved_to}"):
        strategies.build({"name": "spec_reason", "steps": {field: value}})
    with pytest.raises(BadRequestError, match=rf"strategy\.step_generator: .*set {moved_to}"):
        strategies.build({"name": "beam", "step_generator": {"name": "speculative", field: value}})


@pytest.mark.parametrize(
    ("step", "message"),
    [({"max_step_tokens": 0}, "greater than or equal to 1"),
     ({"delimiters": [""]}, "at least 1 character"),
     ({"answer_marker": "Answer:"}, "leave step.answer_marker unset")],
    ids=["zero-step-tokens", "empty-delimiter", "answer-marker"],
)
def test_bad_step_configs_are_refused_naming_the_field(step: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=rf"strategy\.step.*{message}"):
        strategies.build({"name": "spec_reason", "step": step})


def test_a_cut_step_cannot_extend_a_chain() -> None:
    from ponder.strategies.step_generators import Step

    with pytest.raises(ValueError, match="cut short by the budget"):
        Prefix((1, 2)).extend(Step("", (), "draft", None, cut="budget"))


class _Tokenizer:
    eos_token_id = None


async def test_a_server_draft_is_built_once_per_config() -> None:
    spec_ = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m",
             "tokenizer": _Tokenizer()}
    ctx = context(ScriptedBase(ratings=[]))
    first = (await ctx.on(spec_)).backend
    assert (await ctx.on(dict(spec_))).backend is first
    assert (await ctx.on({**spec_, "model": "other"})).backend is not first
