"""The server's engine lifecycle over the engine pool with a fake engine that can die:
/health goes starting -> ok -> unavailable -> ok, requests get 503 with Retry-After while
there is no engine, a death fails the requests in flight with a message that says what
happened and starts a new engine, restarts are bounded and backed off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from server_helpers import answers, chat, wait_health

from ponder.backends.scripted import ScriptedBackend
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.errors import BackendDeadError
from ponder.server import ServerSettings, create_app

DEATH = "the vLLM engine stopped unexpectedly (EngineDeadError: EngineCore encountered an issue.)"


class Mortal(ScriptedBackend):
    """A scripted engine that ``die()`` kills: its streams then fail as a dead vLLM's do."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(answers("12", delay=delay).handler)
        self.dead = self.closed = False

    def die(self) -> None:
        self.dead = True

    @property
    def alive(self) -> bool:
        return not (self.dead or self.closed)

    async def close(self) -> None:
        self.closed = True

    async def _stream(self, request: GenerationRequest, state: GenerationState) -> AsyncIterator[None]:
        async for _ in super()._stream(request, state):
            if self.dead:
                raise BackendDeadError(DEATH)
            yield


class Engines:
    """What the pool builds: each engine once ``gate`` is open (or at once), and when."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False, gate: bool = False) -> None:
        self.delay, self.fail = delay, fail
        self.gate = asyncio.Event()
        if not gate:
            self.gate.set()
        self.built: list[Mortal] = []
        self.started_at: list[float] = []

    async def open(self, spec: Any) -> Mortal:
        self.started_at.append(time.monotonic())
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("no memory for the KV cache")
        self.built.append(Mortal(self.delay))
        return self.built[-1]


@asynccontextmanager
async def serving(monkeypatch: pytest.MonkeyPatch, fake: Engines,
                  **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr("ponder.backends.pool.open_backend", fake.open)
    app = create_app(ServerSettings(**settings), backend_spec="embedded")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ponder.test") as http:
            yield http


async def test_health_goes_starting_ok_unavailable_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Engines(gate=True)
    async with serving(monkeypatch, fake, restart_backoff_s=0.3) as http:
        starting = await http.get("/health")
        assert starting.status_code == 503 and starting.json()["status"] == "starting"
        assert int(starting.headers["Retry-After"]) > 0
        refused = await http.post("/v1/chat/completions", json=chat())
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
        assert refused.json()["error"]["message"] == "the engine is starting; retry shortly"
        assert refused.json()["error"]["code"] == "engine_unavailable"

        fake.gate.set()
        assert (await wait_health(http, "ok")).status_code == 200
        assert (await http.post("/v1/chat/completions", json=chat())).status_code == 200

        fake.built[0].die()  # with no request running: /health notices it
        down = await http.get("/health")
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
        assert "restarting in 0.3 s" in down.json()["detail"] and "Retry-After" in down.headers
        assert (await wait_health(http, "ok")).status_code == 200
        answered = await http.post("/v1/chat/completions", json=chat())
        assert answered.status_code == 200
    assert len(fake.built) == 2 and all(engine.closed for engine in fake.built)


async def test_a_death_fails_the_requests_in_flight_clearly_and_a_new_engine_serves_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = Engines(delay=0.01)  # "12" after "Let me think.": about 0.2 s a sample
    async with serving(monkeypatch, fake, restart_backoff_s=0.05) as http:
        await wait_health(http, "ok")
        body = chat(strategy={"name": "self_consistency", "n": 2})
        in_flight = [asyncio.create_task(http.post("/v1/chat/completions", json=body)),
                     asyncio.create_task(http.post("/v1/chat/completions", json={**body, "stream": True}))]
        async with asyncio.timeout(5):
            while len(fake.built[0].requests) < 2:  # both runs are generating
                await asyncio.sleep(0.01)
        fake.built[0].die()
        plain, streamed = await asyncio.gather(*in_flight)
        assert plain.status_code == 503 and int(plain.headers["Retry-After"]) >= 1
        message = plain.json()["error"]["message"]
        assert message.startswith(DEATH) and message.endswith(
            "the server is starting a new engine; retry shortly")
        assert "above" not in message
        assert DEATH in streamed.text  # the stream had started: its error is an event
        await wait_health(http, "ok")
        assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
        assert len(fake.built) == 2 and fake.built[0].closed  # the pool closed what was left


async def test_restarts_back_off_and_stop_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Engines()
    settings = {"max_restarts": 2, "restart_backoff_s": 0.2, "restart_backoff_max_s": 10}
    async with serving(monkeypatch, fake, **settings) as http:
        for engine in range(3):
            await wait_health(http, "ok")
            fake.built[engine].die()
            await http.get("/health")
        gave_up = await wait_health(http, "unavailable")
        await asyncio.sleep(0.5)  # no restart is coming
        gave_up = await http.get("/health")
        assert gave_up.status_code == 503 and "Retry-After" not in gave_up.headers
        assert "restarted 2 times" in gave_up.json()["detail"]
        assert "max_restarts=2" in gave_up.json()["detail"]
        refused = await http.post("/v1/chat/completions", json=chat())
        assert refused.status_code == 503 and "restart the server" in refused.json()["error"]["message"]
        assert fake.built[-1].closed  # the last engine's remains were cleared at once
    assert len(fake.built) == 3
    first, second = (b - a for a, b in zip(fake.started_at, fake.started_at[1:]))
    assert 0.2 <= first < 0.4 and 0.4 <= second < 0.7  # the wait doubles


async def test_an_engine_that_fails_to_start_is_retried_then_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = Engines(fail=True)
    async with serving(monkeypatch, fake, max_restarts=1, restart_backoff_s=0.01) as http:
        async with asyncio.timeout(5):
            while len(fake.started_at) < 2 or (await http.get("/health")).headers.get("Retry-After"):
                await asyncio.sleep(0.01)
        down = await http.get("/health")
    assert down.json()["status"] == "unavailable"
    assert "failed to start (RuntimeError: no memory for the KV cache)" in down.json()["detail"]
    assert len(fake.started_at) == 2


async def test_a_backend_given_to_the_app_is_not_replaced_when_it_dies() -> None:
    engine = Mortal()
    app = create_app(ServerSettings(), backend=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ponder.test") as http:
            engine.die()
            down = await http.get("/health")
    assert down.status_code == 503
    assert "cannot start another" in down.json()["detail"]
