"""``ponder serve`` binds its port before anything slow: a port in use fails at once, naming
it; and a stream whose client goes away leaves no task of its own behind."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from server_helpers import answers

from ponder.cli import main
from ponder.server.errors import to_api_error
from ponder.server.serve import listen
from ponder.server.streaming import sse_events


def test_a_port_in_use_fails_at_once_naming_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        code = main(["serve", "backend=embedded", "--host", "127.0.0.1", "--port", str(port)])
        took = time.monotonic() - started
    assert code == 2 and took < 5  # no engine was loaded first
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in err
    assert "listening on" not in err


def test_a_free_port_is_listening_before_the_app_runs() -> None:
    with listen("127.0.0.1", 0) as sock:
        with socket.create_connection(sock.getsockname(), timeout=2):
            pass  # the kernel accepted it: clients queue instead of being refused


async def test_a_stream_closed_mid_wait_leaves_no_task_pending() -> None:
    backend = answers("x" * 2000, delay=0.001)

    async def run(listener):  # type: ignore[no-untyped-def]
        async for _ in backend.stream(_request(backend)):
            pass

    events = sse_events(lambda listener: asyncio.ensure_future(run(listener)),
                        lambda fields: fields, chat=True, trace=False, on_error=to_api_error,
                        keepalive_s=0.05)
    assert await asyncio.wait_for(anext(events), timeout=10) == ": working\n\n"
    waiting = asyncio.ensure_future(anext(events))  # parked in its wait for the next event
    await asyncio.sleep(0.01)
    waiting.cancel()  # what a disconnect does to the response task
    await asyncio.gather(waiting, return_exceptions=True)
    await events.aclose()
    assert not [t for t in asyncio.all_tasks() if not t.done() and _ours(t)]


def _request(backend):  # type: ignore[no-untyped-def]
    from ponder.core.generation import GenerationRequest, SamplingParams

    return GenerationRequest(prompt_token_ids=tuple(backend.encode("hi")),
                             params=SamplingParams(max_tokens=4000))


def _ours(task: asyncio.Task) -> bool:  # type: ignore[type-arg]
    name = task.get_coro().__qualname__
    return name.startswith("Queue.get") or name.startswith("test_a_stream_closed_mid_wait.<locals>.run")
