"""A deterministic backend for exact unit tests of algorithms, like httpx's MockTransport.

Each sample's text comes from a handler ``(request, sample_index, call_index) ->
ScriptedSample`` or from a script handed out in order. A token is one character (id =
``ord(char)``), so tests can write expected ids by hand. Samples of a request stream
concurrently, one token per engine step, each token after its sample's ``delay``, so a test
can pin which sample finishes first, cancel mid-stream and count what was spent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ponder.backends.base import Backend
from ponder.core.generation import (
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationState,
    SamplingParams,
)
from ponder.errors import BackendError, BadRequestError


@dataclass(frozen=True)
class ScriptedSample:
    """What one sample generates when nothing (max_tokens, a stop string) ends it earlier."""

    text: str
    logprobs: Sequence[float] | None = None
    """One per token (character). None: 0.0 each when the request asks for logprobs."""
    finish_reason: Literal["stop", "length"] = "stop"
    """Why the sample ends when its text runs out."""
    delay: float = 0.0
    """Seconds before each token, so tests can order samples in time."""
    stop_reason: str | int | None = None
    """The stop string or token id reported when the text runs out."""

    def __post_init__(self) -> None:
        if self.logprobs is not None:
            object.__setattr__(self, "logprobs", tuple(self.logprobs))
            if len(self.logprobs) != len(self.text):
                raise BadRequestError(
                    f"logprobs must have one value per token (character) of text: "
                    f"{len(self.text)} tokens, got {len(self.logprobs)}"
                )
        if self.delay < 0:
            raise BadRequestError(f"delay must be >= 0, got {self.delay}")


Handler = Callable[[GenerationRequest, int, int], ScriptedSample]
"""``handler(request, sample_index, call_index)``: the sample to generate."""


@dataclass(frozen=True)
class _Plan:
    """What a sample emits once ``max_tokens`` and stops are applied."""

    tokens: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: FinishReason
    stop_reason: str | int | None
    delay: float


def _plan(sample: ScriptedSample, params: SamplingParams) -> _Plan:
    """Cut ``sample`` at its earliest stop (string or token id) if that comes within
    ``max_tokens``, else at ``max_tokens``. Token ids always spell the text exactly."""
    text = sample.text
    # (tokens generated when the stop is hit, characters kept, stop reason)
    stops: list[tuple[int, int, str | int]] = []
    for stop in params.stop:
        at = text.find(stop)
        if at >= 0:
            end = at + len(stop)
            stops.append((end, end if params.include_stop_str_in_output else at, stop))
    stop_token = next((i for i, ch in enumerate(text) if ord(ch) in params.stop_token_ids), None)
    if stop_token is not None:
        stops.append((stop_token + 1, stop_token + 1, ord(text[stop_token])))
    first_stop = min(stops, key=lambda stop: stop[0], default=None)

    finish: FinishReason
    if first_stop is not None and first_stop[0] <= params.max_tokens:
        _, kept, reason = first_stop
        finish = "stop"
    elif len(text) > params.max_tokens:
        kept, finish, reason = params.max_tokens, "length", None
    else:
        kept, finish, reason = len(text), sample.finish_reason, sample.stop_reason
    logprobs = sample.logprobs if sample.logprobs is not None else (0.0,) * len(text)
    return _Plan(
        tokens=tuple(ord(ch) for ch in text[:kept]),
        logprobs=tuple(logprobs[:kept]),
        finish_reason=finish,
        stop_reason=reason,
        delay=sample.delay,
    )


def _schedule(plans: Sequence[_Plan]) -> Iterator[tuple[float, int, int]]:
    """``(due time, position, sample index)`` of every token in engine order. A sample with
    no tokens still gets one event at time 0, which finishes it."""
    events = [
        ((position + 1) * plan.delay, position, index)
        for index, plan in enumerate(plans)
        for position in range(len(plan.tokens))
    ]
    events += [(0.0, 0, index) for index, plan in enumerate(plans) if not plan.tokens]
    return iter(sorted(events))


def _advance(completion: Completion, plan: _Plan, position: int) -> None:
    """Emit the sample's token at ``position`` (logprobs too when the request asked, i.e. when
    the lists exist) and finish it after its last token."""
    if position < len(plan.tokens):
        token = plan.tokens[position]
        completion.token_ids.append(token)
        completion.text += chr(token)
        if completion.logprobs is not None and completion.top_logprobs is not None:
            completion.logprobs.append(plan.logprobs[position])
            completion.top_logprobs.append({token: plan.logprobs[position]})
    if position >= len(plan.tokens) - 1:
        completion.finish_reason = plan.finish_reason
        completion.stop_reason = plan.stop_reason


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


class ScriptedBackend(Backend):
    """A test double: samples come from ``handler``; every request is kept in ``requests``.

    ``cached_prompt_tokens`` of a request is its longest common prefix with any earlier
    request's prompt, rounded down to ``block_size`` (as an engine caches whole blocks).
    """

    name = "scripted"

    def __init__(self, handler: Handler, *, block_size: int = 1) -> None:
        super().__init__()
        if block_size < 1:
            raise BadRequestError(f"block_size must be >= 1, got {block_size}")
        self.handler = handler
        self.block_size = block_size
        self.requests: list[GenerationRequest] = []
        """Every request received, in order (a request's index is its ``call_index``)."""

    @classmethod
    def from_script(
        cls, samples: Sequence[ScriptedSample | str], *, block_size: int = 1
    ) -> ScriptedBackend:
        """Hand out ``samples`` in order across all samples of all requests (a string is a
        sample that stops after its text). Running out raises ``BackendError``."""
        script = [s if isinstance(s, ScriptedSample) else ScriptedSample(s) for s in samples]
        handed_out = itertools.count()

        def next_in_script(
            request: GenerationRequest, sample_index: int, call_index: int
        ) -> ScriptedSample:
            position = next(handed_out)
            if position >= len(script):
                raise BackendError(
                    f"the script ran out: it has {len(script)} samples, and request "
                    f"{call_index} asked for another (its sample {sample_index}); "
                    f"add samples to the script"
                )
            return script[position]

        return cls(next_in_script, block_size=block_size)

    # -- tokenization: one character, one token -----------------------------------------
    def encode(self, text: str) -> list[int]:
        return [ord(ch) for ch in text]

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(chr(token) for token in token_ids)

    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        turns = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return self.encode(turns + "assistant: ")

    # -- generation ---------------------------------------------------------------------
    def _cached_tokens(self, prompt: Sequence[int]) -> int:
        earlier = (r.prompt_token_ids for r in self.requests)
        longest = max((_common_prefix(prompt, other) for other in earlier), default=0)
        return longest // self.block_size * self.block_size

    async def _stream(
        self, request: GenerationRequest, state: GenerationState
    ) -> AsyncIterator[None]:
        if request.params.extra_args:
            raise BadRequestError(
                f"the scripted backend runs no logits processors, so it cannot honour "
                f"extra_args {sorted(request.params.extra_args)}"
            )
        state.cached_prompt_tokens = self._cached_tokens(request.prompt_token_ids)
        call_index = len(self.requests)
        self.requests.append(request)
        params = request.params
        plans = [_plan(self.handler(request, i, call_index), params) for i in range(params.n)]
        if params.logprobs is not None:
            for completion in state.completions:
                completion.logprobs, completion.top_logprobs = [], []
        now = 0.0
        for (due, _), step in itertools.groupby(_schedule(plans), key=lambda e: e[:2]):
            await asyncio.sleep(due - now)  # sleep(0) still lets other requests run
            now = due
            for _, position, index in step:
                _advance(state.completions[index], plans[index], position)
            yield
