"""The app over a scripted backend, driven in-process through httpx (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.core.generation import GenerationRequest
from ponder.server import ServerSettings, create_app


def answers(*values: str, delay: float = 0.0, reasoning: str = "Let me think.") -> ScriptedBackend:
    """Sample i of every request answers ``values[i % len(values)]``."""

    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        return ScriptedSample(f"{reasoning}\nAnswer: {values[sample % len(values)]}", delay=delay)

    return ScriptedBackend(handler)


@asynccontextmanager
async def client(backend: ScriptedBackend | None = None, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerSettings(**settings), backend=backend or answers("12"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ponder.test") as http:
        yield http


def chat(question: str = "What is 6 times 2?", **fields: Any) -> dict[str, Any]:
    return {"model": "ponder", "messages": [{"role": "user", "content": question}], **fields}


async def wait_health(http: httpx.AsyncClient, status: str, within_s: float = 5.0) -> httpx.Response:
    """The first /health answer with ``status``; fails after ``within_s``."""
    async with asyncio.timeout(within_s):
        while True:
            response = await http.get("/health")
            if response.json()["status"] == status:
                return response
            await asyncio.sleep(0.01)
