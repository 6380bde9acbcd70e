"""A client that goes away cancels its work in the engine, streaming or not; shutdown cancels
what is still running."""

from __future__ import annotations

import asyncio

from server_helpers import answers, chat

from ponder.server import ServerSettings
from ponder.server.app import _until_disconnected
from ponder.server.engine import EngineSupervisor
from ponder.server.errors import to_api_error
from ponder.server.metrics import Metrics
from ponder.server.plan import make_plan
from ponder.server.schemas import ChatCompletionRequest
from ponder.server.service import Service
from ponder.server.streaming import sse_events

LONG = "x" * 2000


def _service() -> Service:
    backend = answers(LONG, delay=0.001)  # about 2 s a sample if nothing stops it
    settings = ServerSettings(caps={"generated_tokens": 100_000})
    return Service(EngineSupervisor(settings, backend=backend), settings, Metrics())


def _plan(service: Service):  # type: ignore[no-untyped-def]
    request = ChatCompletionRequest(**chat(strategy={"name": "self_consistency", "n": 2,
                                                     "sampling": {"max_tokens": 4000}}))
    return make_plan(request, service.settings)


async def test_closing_a_stream_cancels_the_run_and_aborts_the_engine_request() -> None:
    service = _service()
    events = sse_events(lambda listener: service.track(service.run(_plan(service), listener)),
                        lambda fields: fields, chat=True, trace=False, on_error=to_api_error,
                        keepalive_s=0.05)
    assert await asyncio.wait_for(anext(events), timeout=10) == ": working\n\n"
    await _generating(service)  # else a loaded machine may close it before any token
    await events.aclose()  # what the response does when its client disconnects
    await asyncio.sleep(0)
    assert not service.runs
    usage = service.backend.usage
    assert usage.generated_tokens < 2 * len(LONG)
    assert usage.cancelled_tokens == usage.generated_tokens > 0
    assert service.metrics.cancelled._value.get() == 1
    assert service.metrics.in_flight._value.get() == 0


async def _generating(service: Service) -> None:
    """Return once the engine has the run's request and has produced tokens for it: a fixed
    sleep from the start can end, on a loaded machine, before the request was even sent."""
    async with asyncio.timeout(10):
        while not service.backend.requests:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # its first tokens are due after 1 ms


async def test_shutdown_cancels_runs_in_flight() -> None:
    service = _service()
    task = service.track(service.run(_plan(service)))
    await _generating(service)
    await service.cancel_all()
    assert task.cancelled()
    assert service.backend.usage.cancelled_tokens == service.backend.usage.generated_tokens > 0


class _GoneClient:
    """A request whose client has hung up."""

    async def is_disconnected(self) -> bool:
        return True


async def test_a_plain_request_whose_client_hangs_up_is_cancelled() -> None:
    service = _service()
    task = service.track(service.run(_plan(service)))
    assert await _until_disconnected(task, _GoneClient()) is None  # type: ignore[arg-type]
    assert task.cancelled()
    assert service.backend.usage.cancelled_tokens == service.backend.usage.generated_tokens > 0
