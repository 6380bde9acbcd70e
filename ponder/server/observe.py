"""A per-request view of the shared backend that reports each sample as it finishes: the
progress events a streaming response sends while the strategy is still working.

It only watches: requests, their cancellation and the engine are the shared backend's. It is
built per request, so no request ever sees another's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from ponder.backends.base import Backend
from ponder.core.generation import GenerationRequest, GenerationState

Listener = Callable[[dict[str, Any]], None]


class ObservedBackend(Backend):
    """``inner`` with ``listener(event)`` called once per finished sample."""

    def __init__(self, inner: Backend, listener: Listener) -> None:
        super().__init__()
        self.inner, self.listener = inner, listener
        self.name, self.model = inner.name, inner.model
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        # capabilities a strategy may look for on the backend (engine_processors ...)
        return getattr(self.inner, name)

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.inner.decode(token_ids)

    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return self.inner.render_chat(messages)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return self.inner.eos_token_ids

    async def _stream(self, request: GenerationRequest, state: GenerationState) -> AsyncIterator[None]:
        call, self._calls = self._calls, self._calls + 1
        reported: set[int] = set()
        async with aclosing(self.inner.stream(request, state)) as updates:
            async for _ in updates:
                for completion in state.completions:
                    if completion.finished and completion.index not in reported:
                        reported.add(completion.index)
                        self.listener({
                            "event": "sample_finished", "call": call, "sample": completion.index,
                            "tokens": completion.num_tokens,
                            "finish_reason": completion.finish_reason,
                        })
                yield
