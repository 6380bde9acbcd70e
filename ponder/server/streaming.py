"""Server-sent events for ``stream: true``: progress while the strategy works, then the answer.

While the strategy runs, each finished sample (and 'auto''s choice) is sent at once as a chunk
with no choices and a ``ponder`` field, which the official client passes through. When the
run ends, the reasoning and the answer are streamed as ``delta`` chunks, then a last chunk
with the finish reason and ``usage``, then ``data: [DONE]``. A comment line goes out when
nothing else has for a while, so proxies keep the connection open.

When the client disconnects, the response task is cancelled, and with it this generator:
its ``finally`` cancels the strategy run, which aborts its requests in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from ponder.server.errors import ApiError
from ponder.server.observe import Listener
from ponder.server.responses import finish_reason, ponder_block, split_text, usage_block
from ponder.server.service import Outcome

KEEPALIVE_S = 5.0
"""Seconds of silence before a keep-alive comment goes out."""
PIECE_CHARS = 16
"""The answer is streamed in pieces of about this many characters."""


def _event(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def sse_events(
    start: Callable[[Listener], asyncio.Task[Outcome]],
    chunk: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    chat: bool,
    trace: bool,
    on_error: Callable[[BaseException], ApiError],
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[str]:
    """``start(listener)`` runs the strategy; ``chunk(fields)`` wraps fields in the stream's
    envelope (id, object, created, model)."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = start(events.put_nowait)
    getter: asyncio.Task[dict[str, Any]] | None = None
    try:
        while not task.done() or not events.empty():
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait({getter, task}, timeout=keepalive_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield _event(chunk({"choices": [], "ponder": getter.result()}))
                continue
            await _cancelled(getter)
            if not done:
                yield ": working\n\n"
        try:
            outcome = task.result()
        except Exception as exc:  # noqa: BLE001 - every failure reaches the client as an error event
            error = on_error(exc)
            yield _event({"error": {"message": error.message, "type": error.type,
                                    "param": error.param, "code": error.code}})
            return
        for piece in _answer_chunks(outcome, chat, trace):
            yield _event(chunk(piece))
        yield _event("[DONE]")
    finally:  # a disconnect closes this generator mid-wait: neither task may be left pending
        if getter is not None:
            await _cancelled(getter)
        if not task.done():
            await _cancelled(task)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, whatever it ends with."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _answer_chunks(outcome: Outcome, chat: bool, trace: bool) -> list[dict[str, Any]]:
    """The answer as deltas (chat) or text pieces (completions), then the finish with usage."""
    result = outcome.result
    if chat:
        reasoning, content = split_text(result, outcome.thinking)
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"reasoning_content": p} for p in _pieces(reasoning)]
        deltas += [{"content": p} for p in _pieces(content)]
        pieces = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        last = {"index": 0, "delta": {}, "finish_reason": finish_reason(result)}
    else:
        best = result.best
        pieces = [{"choices": [{"index": 0, "text": p, "finish_reason": None}]}
                  for p in _pieces(best.text if best else "")]
        last = {"index": 0, "text": "", "finish_reason": finish_reason(result)}
    extras = ponder_block(result, outcome.decision, trace)
    return [*pieces, {"choices": [last], "usage": usage_block(result), "ponder": extras}]


def _pieces(text: str) -> list[str]:
    return [text[i:i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)]
