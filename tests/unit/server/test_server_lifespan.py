"""The server's lifespan: its backend comes from the engine pool when it starts, and its
shutdown closes the pool, with every engine or client requests used."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_helpers import answers, chat, wait_health

from ponder.backends.pool import engines
from ponder.backends.scripted import ScriptedBackend
from ponder.server import ServerSettings, create_app


class Closing(ScriptedBackend):
    def __init__(self) -> None:
        super().__init__(answers("12").handler)
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_the_backend_comes_from_the_pool_and_shutdown_closes_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[tuple[Any, Closing]] = []

    async def open_backend(spec: Any) -> Closing:
        built.append((spec, Closing()))
        return built[-1][1]

    monkeypatch.setattr("ponder.backends.pool.open_backend", open_backend)
    app = create_app(ServerSettings(), backend_spec={"kind": "vllm", "model": "embedded"})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ponder.test") as http:
            await wait_health(http, "ok")  # the engine loads in the background
            response = await http.post("/v1/chat/completions", json=chat())
        assert response.status_code == 200
        served = built[0][1]
        assert await engines.backend("embedded") is served  # the pool's one
        judge = await engines.backend({"kind": "vllm", "model": "judge-model"})  # a verifier's
    assert served.closed and judge.closed and len(engines) == 0



async def test_an_app_given_its_backend_leaves_the_pool_to_its_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An app built around a backend object (a test's, a program embedding the server) does
    not own the process's engines: its shutdown must not close another user's engine."""

    async def open_backend(spec: Any) -> Closing:
        return Closing()

    monkeypatch.setattr("ponder.backends.pool.open_backend", open_backend)
    someone_elses = await engines.backend({"kind": "vllm", "model": "another-users-model"})
    try:
        app = create_app(ServerSettings(), backend=Closing())
        async with app.router.lifespan_context(app):
            pass
        assert not someone_elses.closed
        assert await engines.backend({"kind": "vllm", "model": "another-users-model"}) is someone_elses
    finally:
        await engines.close()
