"""Budget forcing as a per-token rule, in plain Python: what the engine-side logits processor
(``ponder.backends.logits_processors``) applies to each request that asks for it.

The engine cannot decode text while it samples, so the rule works on token ids it is given
up front (``ForcingArgs``, built once per request from the thinking format):

- **below the minimum** an attempt to end thinking is overridden: the tokens that *start* the
  end-of-thinking marker, and the stop tokens (EOS), are redirected to the continuation word
  ("Wait"). The engine draws whether the model would have ended, with the probability the
  model gives those tokens, and forces the continuation's tokens when it would; otherwise
  it bans them. So a forced "Wait" appears exactly where the model tried to stop, as in s1,
  without a round trip;
- **at the maximum** the answer prompt's tokens are forced, closing the thinking;
- **in the answer** a stop token is forced once the answer has ``max_answer`` tokens.

Approximations, inherent to working on tokens: only the marker's tokenizations listed in
``closes`` are recognised (the marker alone and after a space, leading whitespace-only tokens
dropped: "Answer" and " Answer" for "Answer:"); a marker spelled with other tokens neither
counts as closing nor is banned. Banning a marker's first token bans that token everywhere
in the thinking (the word "Answer" with a capital, for the plain format).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORCING_KEY = "ponder_budget_forcing"
"""The key of a request's ``extra_args`` that carries its ``ForcingArgs``."""

TokenIds = tuple[int, ...]


class ForcingArgs(BaseModel):
    """One request's budget-forcing limits and the token ids the rule needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_thinking: int = Field(ge=0, description="Thinking tokens before an ending is accepted.")
    max_thinking: int = Field(ge=1, description="Thinking tokens after which the answer is forced.")
    max_answer: int = Field(ge=1, description="Answer tokens, the forced stop token included.")
    max_continuations: int = Field(ge=0, description="Most endings overridden per chain.")
    redirects: tuple[tuple[int, TokenIds], ...] = Field(
        description="(first token of a marker variant, continuation forced in its place)."
    )
    stop_continuation: TokenIds = Field(
        min_length=1, description="Continuation forced in place of a stop token (EOS)."
    )
    closes: tuple[TokenIds, ...] = Field(
        min_length=1, description="Token sequences of the marker that close the thinking."
    )
    answer_prompt: TokenIds = Field(min_length=1, description="Forced at the maximum.")

    @model_validator(mode="after")
    def _consistent(self) -> ForcingArgs:
        if self.min_thinking > self.max_thinking:
            raise ValueError(
                f"min_thinking must be <= max_thinking, got {self.min_thinking} > "
                f"{self.max_thinking}"
            )
        if any(not seq for seq in self.closes) or any(not ids for _, ids in self.redirects):
            raise ValueError("closes and redirect continuations must be non-empty token sequences")
        return self

    @classmethod
    def build(
        cls,
        *,
        think_end: str,
        continuation: str,
        answer_prompt: str,
        encode: Callable[[str], list[int]],
        decode: Callable[[Sequence[int]], str],
        min_thinking: int,
        max_thinking: int,
        max_answer: int,
        max_continuations: int,
    ) -> ForcingArgs:
        """Args for a thinking format's markers under a model's tokenizer."""
        closes = marker_variants(think_end, encode, decode)
        redirects = {
            seq[0]: tuple(encode(continuation_for(decode(seq[:1]), continuation)))
            for seq in closes
        }
        return cls(
            min_thinking=min_thinking,
            max_thinking=max_thinking,
            max_answer=max_answer,
            max_continuations=max_continuations,
            redirects=tuple(redirects.items()),
            stop_continuation=tuple(encode(continuation_for("", continuation))),
            closes=closes,
            answer_prompt=tuple(encode(answer_prompt)),
        )


def marker_variants(
    marker: str, encode: Callable[[str], list[int]], decode: Callable[[Sequence[int]], str]
) -> tuple[TokenIds, ...]:
    """The marker's tokenizations on its own and after a space, with leading tokens that are
    only whitespace dropped (banning a space or a newline would stop the model writing)."""
    variants: list[TokenIds] = []
    for text in (marker, " " + marker):
        ids = encode(text)
        while len(ids) > 1 and not decode(ids[:1]).strip():
            ids = ids[1:]
        if ids and tuple(ids) not in variants:
            variants.append(tuple(ids))
    return tuple(variants)


def continuation_for(replaced: str, continuation: str) -> str:
    """The continuation written in place of ``replaced`` (the marker or stop the model was
    writing): it keeps the whitespace that text began with, so " Answer" becomes " Wait". A
    stop token (EOS) has no text: the continuation then follows a space, so that it does not
    run into the last word ("is 7. Wait", not "is 7.Wait")."""
    if not replaced:
        return " " + continuation
    return replaced[: len(replaced) - len(replaced.lstrip())] + continuation


def find_close(ids: Sequence[int], closes: Sequence[TokenIds]) -> int | None:
    """Index just after the first marker sequence in ``ids``, or None."""
    ends = [
        start + len(seq)
        for seq in closes
        for start in range(len(ids) - len(seq) + 1)
        if tuple(ids[start : start + len(seq)]) == seq
    ]
    return min(ends, default=None)


def forced_close(ids: Sequence[int], args: ForcingArgs) -> bool:
    """Whether the rule closed this chain's thinking (the model had not closed it by the
    maximum, and the answer prompt stands right there)."""
    end = args.max_thinking + len(args.answer_prompt)
    if tuple(ids[args.max_thinking : end]) != args.answer_prompt:
        return False
    return find_close(ids[: args.max_thinking], args.closes) is None


@dataclass(frozen=True)
class Force:
    """Emit this token, whatever the model prefers."""

    token: int


@dataclass(frozen=True)
class Redirect:
    """If the model would emit one of ``ends``, call ``ChainRule.redirect`` with it; else ban
    them all."""

    ends: TokenIds


FREE = None
"""No constraint at this step."""

Decision = Force | Redirect | None


@dataclass
class ChainRule:
    """The rule's state for one chain (one row of the engine's batch). ``decide`` is called
    before each sampling step with every token the chain has generated so far."""

    args: ForcingArgs
    stop_tokens: TokenIds
    """The request's stop token ids (EOS): ends of the chain, redirected below the minimum."""
    continuations: int = 0
    """Continuations forced so far."""
    answer_start: int | None = None
    """Index in the output where the answer begins (None while thinking)."""
    _pending: tuple[int, TokenIds, Literal["continuation", "answer"]] | None = None
    _seen: int = 0
    """Output length at the last decision: the marker is looked for in what came after (all
    of it at first, so a request recomputed after preemption finds its answer again)."""
    _redirects: dict[int, TokenIds] = field(init=False)
    _ends: Redirect = field(init=False)

    def __post_init__(self) -> None:
        self._redirects = dict(self.args.redirects)
        for stop in self.stop_tokens:
            self._redirects.setdefault(stop, self.args.stop_continuation)
        self._ends = Redirect(tuple(self._redirects))

    def decide(self, output: Sequence[int]) -> Decision:
        n = len(output)
        forced = self._continue_forcing(output)
        if forced is not None:
            return forced
        args = self.args
        if self.answer_start is None:  # the model may have written the marker itself
            window = max(0, self._seen - _longest(args.closes) + 1)
            end = find_close(output[window:], args.closes)
            self.answer_start = None if end is None else window + end
        self._seen = n
        if self.answer_start is not None:
            if n - self.answer_start >= args.max_answer - 1 and self.stop_tokens:
                return Force(min(self.stop_tokens))
            return FREE
        if n >= args.max_thinking:
            return self._start(n, args.answer_prompt, "answer")
        if n < args.min_thinking and self.continuations < args.max_continuations:
            return self._ends
        return FREE

    def redirect(self, output_length: int, end: int) -> Force:
        """The model would have emitted ``end`` here: force the continuation instead."""
        return self._start(output_length, self._redirects[end], "continuation")

    def _start(
        self, at: int, tokens: TokenIds, kind: Literal["continuation", "answer"]
    ) -> Force:
        self._pending = (at, tokens, kind)
        return Force(tokens[0])

    def _continue_forcing(self, output: Sequence[int]) -> Force | None:
        """The next token of a forced sequence in progress; finishing one updates the state.
        A sequence the output no longer follows (a request preempted and recomputed) is
        dropped."""
        if self._pending is None:
            return None
        start, tokens, kind = self._pending
        done = len(output) - start
        if done < 0 or tuple(output[start:]) != tokens[:done]:
            self._pending = None
            return None
        if done < len(tokens):
            return Force(tokens[done])
        self._pending = None
        if kind == "continuation":
            self.continuations += 1
        else:
            self.answer_start = len(output)
        return None


def _longest(sequences: Sequence[TokenIds]) -> int:
    return max(len(seq) for seq in sequences)
