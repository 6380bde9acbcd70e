"""Step generators: who writes the next reasoning step, and at what cost.

Where a step ends is never the generator's: it is the strategy's one ``StepConfig`` (its
delimiters, stop token ids and size). A generator says who writes:

- ``StepGenerator`` (``sample``): the base model (the run's model) samples each step. In a
  step search it samples every parent's children in one request (``SampledSteps``).
- ``SpeculativeSteps`` (``speculative``; SpecReason, Pan et al. 2025): a small draft model
  writes the step; the base model rates it 0-9 in a one-token call (the expected digit under
  its top logprobs), and a step rated at least ``threshold`` is kept, else the base model
  writes the step itself. The rating prompt is the chain's own token ids, then the step, then
  a fixed judge turn, so the engine's prefix cache serves the question and every earlier step.
  In a step search each child is then its own session call (``SessionExpander``).

A generator is configuration, frozen and shared by concurrent requests; ``open`` binds it to
one run and returns a ``StepSession`` (the run's prompt and models) that grows a chain step
by step, and ``writer`` gives a step search what grows its tree. Every call goes through the
run, which reserves it first. A step that the budget refused or the clock cut short comes
back with ``cut`` set and its usage counted; it cannot extend a chain.

Draft and base vocabularies: when the two backends tokenize a probe text alike (same ids,
same end-of-sequence ids), token ids pass between them unchanged. Otherwise speculative
reasoning works on text: a ``Prefix`` holds the chain in both vocabularies, each step is
encoded for the model that did not write it, and each model still continues its own ids
(never a re-rendered chain), so both prefix caches keep working. Re-encoding a step on its
own can split its first or last characters differently than the writer did; that is the
price of mixing tokenizers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ponder.core.generation import Completion, FinishReason, SamplingParams
from ponder.core.parts import Part
from ponder.core.problem import Problem
from ponder.core.registry import Registry
from ponder.core.sampling import SamplingConfig
from ponder.core.thinking import ThinkingFormat
from ponder.core.usage import Usage
from ponder.runtime import MODEL_KINDS, ModelSpec, Run, charged
from ponder.search.expansion import StepConfig
from ponder.search.tree import SearchTree
from ponder.search.writers import SampledSteps, StepWriter
from ponder.strategies.session_expansion import SessionExpander
from ponder.verifiers.judge_scoring import TOP_LOGPROBS, digit_score

Author = Literal["draft", "base"]
Role = Literal["draft", "judge", "base"]
Cut = Literal["budget", "seconds"]

_RATING = SamplingParams(n=1, temperature=1.0, max_tokens=1, logprobs=TOP_LOGPROBS)
"""The judge's one token: only its top logprobs matter, so the sampled token does not."""

_PROBE = "Step 1: 12 × 7 = 84, so x² ≈ 3.14…\n\n```py\nprint('héllo')\n```</think> Answer: 42"
"""Text on which two tokenizers must agree for their token ids to be shared."""

DEFAULT_JUDGE_INSTRUCTION = (
    "Rate the last reasoning step above for factual correctness and logical validity only, "
    "not style: is it right, and does it follow from the question and the steps before it? "
    "Reply with one digit from 0 (wrong) to 9 (surely right)."
)


@dataclass(frozen=True)
class Prefix:
    """A chain so far. ``base``: the base model's token ids (prompt, then steps); ``draft``: the
    draft model's, only when its vocabulary differs (None: the draft reads ``base``)."""

    base: tuple[int, ...]
    draft: tuple[int, ...] | None = None

    def extend(self, step: Step) -> Prefix:
        """This prefix followed by ``step``, a complete step of the session that built it."""
        if step.cut is not None:
            raise ValueError(f"a step cut short by the {step.cut} cannot extend a chain")
        if self.draft is None:
            return Prefix(self.base + step.token_ids)
        if step.draft_token_ids is None:
            raise ValueError("this prefix holds draft ids; extend it with its own session's steps")
        return Prefix(self.base + step.token_ids, self.draft + step.draft_token_ids)


@dataclass(frozen=True)
class Step:
    """One step written after a prefix, who wrote it, and what every call for it used."""

    text: str
    token_ids: tuple[int, ...]
    """In the base model's vocabulary: what extends ``Prefix.base``."""
    author: Author
    finish_reason: FinishReason | None
    ends_chain: bool = False
    """The writer stopped for good (end of sequence or one of the chain's stop strings), not
    at the step delimiter or the token limit."""
    draft_token_ids: tuple[int, ...] | None = None
    """In the draft model's vocabulary, when it differs from the base model's."""
    rating: float | None = None
    """The base model's 0-9 rating of the drafted step (expected digit); None when nothing
    was rated, or when the judge gave no digit (the draft then counts as rejected)."""
    rejected_draft: str | None = None
    """The drafted text that the base model's step replaced."""
    cut: Cut | None = None
    """Set when the budget refused a call or the clock ran out before the step was complete."""
    usage: Mapping[Role, Usage] = field(default_factory=dict)
    """Per role (draft, judge, base), what its calls for this step used."""

    @property
    def judged(self) -> bool:
        """Whether the base model rated a drafted step (accepted when ``author`` is draft)."""
        return "judge" in self.usage and self.cut is None


class StepSession:
    """One run's chain writer, in which the base model samples each step. Subclasses change
    who writes a step; ``finish`` (the answer after the thinking) is the base model's."""

    def __init__(self, root: Prefix, base: _Writer, step: StepConfig, stops: tuple[str, ...]) -> None:
        self.root = root
        """The chain before its first step: the rendered prompt."""
        self.base = base
        self.step = step
        """Where a step ends: its delimiters, stop token ids and size."""
        self.stops = stops
        """The chain's own stop strings: they end the chain, where a delimiter ends a step."""

    @property
    def shares_ids(self) -> bool:
        """Whether every model of the session reads the base model's token ids."""
        return self.root.draft is None

    async def next_step(self, prefix: Prefix, *, max_tokens: int, seed: int | None = None) -> Step:
        """The step after ``prefix``, at most ``max_tokens`` tokens (fewer when the budget has
        less left)."""
        return await self._base_step(prefix, max_tokens, seed, self._step_stops)

    async def finish(self, prefix: Prefix, *, max_tokens: int, seed: int | None = None) -> Step:
        """The rest of the chain (its answer) by the base model, in one call that runs to the
        end of sequence or a chain stop string, not a delimiter. None of it is thinking."""
        return await self._base_step(prefix, max_tokens, seed, self.stops, thinking=False)

    @property
    def _step_stops(self) -> tuple[str, ...]:
        return (*self.step.delimiters, *self.stops)

    async def _base_step(
        self,
        prefix: Prefix,
        max_tokens: int,
        seed: int | None,
        stops: tuple[str, ...],
        thinking: bool = True,
    ) -> Step:
        written = await self.base.write(
            prefix.base, max_tokens=max_tokens, stops=stops, seed=seed, thinking=thinking,
            stop_token_ids=self.step.stop_token_ids if thinking else (),
        )
        if written is None:
            return Step("", (), "base", None, cut="budget")
        completion, usage = written
        return self._step(completion, "base", tuple(completion.token_ids), {"base": usage})

    def _step(
        self,
        completion: Completion,
        author: Author,
        base_ids: tuple[int, ...],
        usage: dict[Role, Usage],
    ) -> Step:
        return Step(
            completion.text,
            base_ids,
            author,
            completion.finish_reason,
            ends_chain=completion.finish_reason == "stop" and not self.step.ends_step(completion),
            draft_token_ids=self._draft_ids(completion, author),
            cut="seconds" if completion.finish_reason == "aborted" else None,
            usage=usage,
        )

    def _draft_ids(self, completion: Completion, author: Author) -> tuple[int, ...] | None:
        """A step's ids in the draft's vocabulary (None: the draft reads the base's ids)."""
        return None


class StepGenerator(Part):
    """The base model samples each step. ``SpeculativeSteps`` lets a draft model write them.
    Registered as ``sample`` (and ``speculative``), so configs can name them. Where a step
    ends is the strategy's ``step`` config, never the generator's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part_kind = "step generator"
    writes_per_child: ClassVar[bool] = False
    """Whether a search's children are written one session call each (their steps then
    carry no token logprobs) rather than sampled ``n`` to a request."""

    @model_serializer(mode="wrap")
    def _with_name(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A dumped generator names its kind, so the dump builds it again."""
        return {"name": step_generators.name_of(type(self)), **dump(self)}

    @model_validator(mode="before")
    @classmethod
    def _step_limits_live_on_the_step_config(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            moved = {"step_delimiter": "step.delimiters", "max_step_tokens": "step.max_step_tokens"}
            for old, new in moved.items():
                if old in data:
                    raise ValueError(
                        f"{old} is not a step generator setting: where a step ends is the "
                        f"strategy's step config; set {new} instead"
                    )
        return data

    async def open(
        self,
        problem: Problem,
        ctx: Run,
        *,
        step: StepConfig,
        sampling: SamplingConfig,
        system_prompt: str | None,
        thinking: ThinkingFormat,
    ) -> StepSession:
        """Bind to one run: render the prompt and fix how every step is sampled
        (``sampling``: temperature, top_p, and stop strings that end the chain)."""
        base = _Writer(ctx, sampling, thinking, step.max_step_tokens)
        root = Prefix(tuple(ctx.render(problem, system_prompt)))
        plain = StepSession(root, base, step, sampling.stop)
        return await self._session(plain, problem, ctx, system_prompt)

    async def _session(
        self, plain: StepSession, problem: Problem, ctx: Run, system_prompt: str | None
    ) -> StepSession:
        """The session this generator writes with, given the base model's own (a hook for
        generators in which another model writes)."""
        return plain

    async def writer(
        self,
        problem: Problem,
        tree: SearchTree,
        ctx: Run,
        *,
        step: StepConfig,
        sampling: SamplingConfig,
        system_prompt: str | None,
        thinking: ThinkingFormat,
        logprobs: bool,
    ) -> StepWriter:
        """What grows ``tree`` for a search. The plain generator samples every parent's ``n``
        children in one request (``logprobs``: with token logprobs); one that writes each
        step itself (drafts, rates, rewrites) writes each child with its own session calls,
        whose steps carry no logprobs (graph validation refuses a scorer that needs them)."""
        if not self.writes_per_child:
            return SampledSteps(tree, ctx, step, sampling, thinking, logprobs)
        session = await self.open(
            problem, ctx, step=step, sampling=sampling, system_prompt=system_prompt,
            thinking=thinking,
        )
        return SessionExpander(session, tree, ctx, sampling, step)


class SpeculativeSession(StepSession):
    """A run of speculative reasoning: the draft writes, the base rates, and rewrites when the
    rating is below the threshold."""

    def __init__(
        self,
        root: Prefix,
        base: _Writer,
        step: StepConfig,
        stops: tuple[str, ...],
        *,
        draft: _Writer,
        judge_turn: tuple[int, ...],
        threshold: float,
    ) -> None:
        super().__init__(root, base, step, stops)
        self.draft = draft
        self.judge_turn = judge_turn
        """Appended to the chain and the step: closes the turn, asks for the rating."""
        self.threshold = threshold

    async def next_step(self, prefix: Prefix, *, max_tokens: int, seed: int | None = None) -> Step:
        written = await self.draft.write(
            prefix.base if prefix.draft is None else prefix.draft,
            max_tokens=max_tokens,
            stops=self._step_stops,
            seed=seed,
            thinking=True,
            stop_token_ids=self.step.stop_token_ids,
        )
        if written is None:
            return Step("", (), "draft", None, cut="budget")
        completion, draft_usage = written
        base_ids = tuple(
            completion.token_ids if self.shares_ids else self.base.ctx.encode(completion.text)
        )
        drafted = self._step(completion, "draft", base_ids, {"draft": draft_usage})
        if drafted.cut is not None:
            return drafted
        rating, judge_usage, cut = await self._rate(prefix.base + self._without_eos(base_ids))
        usage: dict[Role, Usage] = {"draft": draft_usage}
        if judge_usage is not None:
            usage["judge"] = judge_usage
        if cut is not None:
            return dataclasses.replace(drafted, cut=cut, usage=usage)
        if rating is not None and rating >= self.threshold:
            return dataclasses.replace(drafted, rating=rating, usage=usage)
        # A different seed: with the draft's, a base that is the draft model writes it again.
        rewrite_seed = None if seed is None else (seed + 1) % 2**31
        written_by_base = await super().next_step(prefix, max_tokens=max_tokens, seed=rewrite_seed)
        return dataclasses.replace(
            written_by_base,
            rating=rating,
            rejected_draft=completion.text,
            usage={**usage, **written_by_base.usage},
        )

    def _without_eos(self, ids: tuple[int, ...]) -> tuple[int, ...]:
        """The step as rated: a closing end-of-sequence id would end the turn twice."""
        return ids[:-1] if ids and ids[-1] in self.base.ctx.eos_token_ids else ids

    async def _rate(
        self, chain: tuple[int, ...]
    ) -> tuple[float | None, Usage | None, Cut | None]:
        """The base model's expected 0-9 rating of the chain's last step (None when it gave no
        digit), the rating call's usage, and what cut the call short, if anything did."""
        base = self.base.ctx
        state = await base.generate(chain + self.judge_turn, _RATING, calls="verifier")
        if state is None:
            return None, None, "budget"
        usage = charged(state.usage, "verifier")
        top = state.completions[0].top_logprobs
        if state.timed_out:
            return None, usage, "seconds"
        if not top:  # a server that returned no logprobs: unrated, so rejected
            return None, usage, None
        score = digit_score(top[0], lambda token_id: base.decode([token_id]))
        return (None if score.value is None else score.value * 9), usage, None

    def _draft_ids(self, completion: Completion, author: Author) -> tuple[int, ...] | None:
        if self.shares_ids:
            return None
        if author == "draft":
            return tuple(completion.token_ids)
        return tuple(self.draft.ctx.encode(completion.text))


step_generators: Registry[StepGenerator] = Registry("step generator", StepGenerator)
step_generators.register("sample")(StepGenerator)


@step_generators.register("speculative")
class SpeculativeSteps(StepGenerator):
    """Speculative reasoning: a draft model writes each step, the base model keeps it when it
    rates it at least ``threshold`` out of 9, and writes the step itself otherwise."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    writes_per_child: ClassVar[bool] = True

    draft: ModelSpec | None = Field(
        None,
        description="The draft model: a backend config (as for `backend`, e.g. {kind: vllm, "
        "model: ...} or {kind: openai, base_url: ..., model: ...}), a model name, a Backend, "
        "or None for the run's own backend (the base model drafts for itself).",
    )
    threshold: float = Field(
        7.0, ge=0.0, le=9.0, allow_inf_nan=False,
        description="Lowest 0-9 rating (expected digit) at which a drafted step is kept.",
    )
    judge_instruction: str = Field(
        DEFAULT_JUDGE_INSTRUCTION, min_length=1,
        description="Asked of the base model in a user turn after the chain and its new step.",
    )
    judge_reply: str = Field(
        "Score: ",
        description="Opens the base model's reply so that its next token is the digit.",
    )
    """Measured on SmolLM2-135M with the default instruction: after "Score: " 99.6% of the
    top-20 mass of the next token is digits ("I think the quality score is: ", the paper's
    wording, 88%; "Answer: " 89%). The trailing space matters: the tokenizer writes " 7" as
    a space token and then the digit."""

    @field_validator("draft")
    @classmethod
    def _known_kind(cls, draft: Any) -> Any:
        if isinstance(draft, dict) and draft.get("kind", "vllm") not in MODEL_KINDS:
            kinds = ", ".join(MODEL_KINDS)
            raise ValueError(f"draft kind must be one of {kinds}, got {draft.get('kind')!r}")
        return draft

    async def _session(
        self, plain: StepSession, problem: Problem, ctx: Run, system_prompt: str | None
    ) -> SpeculativeSession:
        draft = await ctx.on(self.draft)
        root = plain.root
        if not same_vocabulary(draft, ctx):
            root = Prefix(root.base, tuple(draft.render(problem, system_prompt)))
        chat = problem.chat(system_prompt)
        return SpeculativeSession(
            root,
            plain.base,
            plain.step,
            plain.stops,
            draft=dataclasses.replace(plain.base, ctx=draft),
            judge_turn=judge_turn(ctx, chat, self.judge_instruction, self.judge_reply),
            threshold=self.threshold,
        )


@dataclass(frozen=True)
class _Writer:
    """One model writing after a prefix (``ctx`` is the run on that model), and the thinking
    part of what it wrote charged."""

    ctx: Run
    sampling: SamplingConfig
    thinking: ThinkingFormat
    max_step_tokens: int

    async def write(
        self,
        prefix: Sequence[int],
        *,
        max_tokens: int,
        stops: tuple[str, ...],
        seed: int | None,
        thinking: bool,
        stop_token_ids: tuple[int, ...] = (),
    ) -> tuple[Completion, Usage] | None:
        """The completion and its usage; None when the budget refused the call. A thinking step
        takes at most ``max_step_tokens``; the answer (``thinking=False``) runs to its end."""
        wanted = min(max_tokens, self.max_step_tokens) if thinking else max_tokens
        params = SamplingParams(
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            max_tokens=self.ctx.tokens_for_one_chain(len(prefix), wanted),
            stop=stops,
            stop_token_ids=stop_token_ids,
            include_stop_str_in_output=True,
            seed=seed,
        )
        state = await self.ctx.generate(prefix, params)
        if state is None:
            return None
        completion, usage = state.completions[0], state.usage
        if thinking:
            spent = self.thinking.split_tokens(completion.token_ids, self.ctx.decode)
            self.ctx.charge_thinking(spent)
            usage = dataclasses.replace(usage, thinking_tokens=spent)
        return completion, usage


def judge_turn(
    ctx: Run, chat: list[dict[str, str]], instruction: str, reply: str
) -> tuple[int, ...]:
    """Token ids that, appended to a chain (the rendered ``chat`` plus its steps), close the
    assistant's turn, ask ``instruction`` in a user turn and open the reply with ``reply``.
    Read off the chat template by rendering ``chat`` with one more, empty, assistant turn and
    the instruction. A template that does not keep the opened prompt as a prefix of that (one
    that rewrites earlier turns) gets the instruction as plain text after the chain instead."""
    opened = ctx.render_chat(chat)
    asked = ctx.render_chat(
        [*chat, {"role": "assistant", "content": ""}, {"role": "user", "content": instruction}]
    )
    if asked[: len(opened)] == opened:
        turn = asked[len(opened):]
    else:
        turn = ctx.encode(f"\n\n{instruction}\n")
    return tuple(turn + (ctx.encode(reply) if reply else []))


def same_vocabulary(a: Run, b: Run) -> bool:
    """Whether token ids mean the same text to both runs' models (compared on a probe text and
    the end-of-sequence ids), so ids can pass between them unchanged."""
    return a.backend is b.backend or (
        a.encode(_PROBE) == b.encode(_PROBE) and a.eos_token_ids == b.eos_token_ids
    )
