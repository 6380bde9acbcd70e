"""The backend interface: as small as a transport. Strategies only ever talk to this.

A backend turns a ``GenerationRequest`` (token-id prefix + sampling params) into a stream of
``GenerationState`` snapshots. The state object is the same one each time, filled in place
(cheap for n=64 samples), and after the stream ends it is the request's result.

Cancellation is part of the contract: closing the stream (``aclose``, breaking out of
``async for``, or cancelling the task iterating it) aborts the request in the engine, marks
unfinished samples ``aborted`` and counts their tokens as cancelled in ``usage``.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing

from ponder.core.generation import GenerationRequest, GenerationState
from ponder.core.problem import Problem
from ponder.core.usage import Usage


class Backend(abc.ABC):
    """An engine that continues token prefixes. Subclasses implement ``_stream``."""

    name: str = "backend"
    model: str | None = None
    """The model it serves, as its config names it ('embedded', a folder, a served model's
    name); None when it does not say. Profiles made for another model are refused."""

    def __init__(self) -> None:
        self.usage = Usage()
        """Everything this backend has done since it was built (all requests)."""

    # -- tokenization and prompts -------------------------------------------------------
    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added."""

    @abc.abstractmethod
    def decode(self, token_ids: Sequence[int]) -> str: ...

    @abc.abstractmethod
    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a chat, with the model's template and the assistant turn opened."""

    def render(self, problem: Problem, system_prompt: str | None = None) -> list[int]:
        return self.render_chat(problem.chat(system_prompt))

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return ()

    # -- generation ---------------------------------------------------------------------
    async def stream(
        self, request: GenerationRequest, state: GenerationState | None = None
    ) -> AsyncIterator[GenerationState]:
        """Yield the request's state each time it changes; the last one is final.
        Pass ``state`` to keep a handle on it even if the stream is cut before its first yield."""
        state = state if state is not None else GenerationState.start(request)
        updates = self._stream(request, state)
        try:
            async for _ in updates:
                yield state
        finally:
            await updates.aclose()  # an early exit must reach the engine and abort there
            state.abort_unfinished()
            state.close()
            self.usage.add(state.usage)

    async def generate(
        self,
        request: GenerationRequest,
        *,
        timeout: float | None = None,
        until: Callable[[GenerationState], bool] | None = None,
        state: GenerationState | None = None,
    ) -> GenerationState:
        """Run a request and return its final state. It ends early, aborting what still runs,
        after ``timeout`` seconds (``state.timed_out``) or once ``until(state)`` is true.
        Pass ``state`` to keep what was done even when the call is cancelled."""
        state = state if state is not None else GenerationState.start(request)
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline, aclosing(self.stream(request, state)) as updates:
                async for _ in updates:
                    if until is not None and until(state):
                        break
        except TimeoutError:
            if not deadline.expired():
                raise
            state.timed_out = True
        return state

    @abc.abstractmethod
    def _stream(self, request: GenerationRequest, state: GenerationState) -> AsyncIterator[None]:
        """Fill ``state`` in place, yielding after each update (at least once). Must abort the
        engine request when closed early (GeneratorExit / CancelledError)."""

    @property
    def alive(self) -> bool:
        """False once closed or once its engine died: the engine pool then builds a new one."""
        return True

    async def close(self) -> None:
        """Release the engine or connection. Idempotent."""

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
