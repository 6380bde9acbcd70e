"""The FastAPI app of ``ponder serve``: OpenAI's chat/completions, completions and models
routes over one shared engine, plus /health and /metrics.

Each request is validated (schemas), authenticated and counted against its key's limit
(limits), planned (plan: strategy, budget under the operator's caps), then run as its own
task with its own ledger (service). A client that goes away cancels its run: a stream through
the response's cancellation (streaming), a plain request by a watch on the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ponder.backends.base import Backend
from ponder.backends.pool import engines
from ponder.server import errors
from ponder.server.errors import ApiError
from ponder.server.limits import BodyLimit, KeyLimiter, authenticate
from ponder.server.metrics import Metrics, MetricsMiddleware
from ponder.server.plan import make_plan
from ponder.server.responses import chat_completion, ponder_block, text_completion
from ponder.server.schemas import ChatCompletionRequest, CompletionRequest, ErrorResponse
from ponder.server.service import Outcome, Service
from ponder.server.settings import ServerSettings
from ponder.server.streaming import sse_events

DISCONNECT_POLL_S = 0.5
ROUTES = frozenset({"/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions"})
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 500, 502, 503)
}


def create_app(
    settings: ServerSettings | None = None,
    *,
    backend: Backend | None = None,
    backend_spec: Mapping[str, Any] | str = "embedded",
) -> FastAPI:
    """The app. With ``backend`` it serves that one (tests pass a scripted backend), which its
    caller owns, with the engine pool. Otherwise it takes ``backend_spec`` from the engine pool
    when it starts and, owning the process's engines, closes the pool when it stops: that
    backend and every engine or client requests used (a judge's, a PRM's)."""
    settings = settings or ServerSettings()
    metrics = Metrics()
    limiter = KeyLimiter(settings.per_key_concurrency)
    state: dict[str, Service] = {}
    if backend is not None:
        state["service"] = Service(backend, settings, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if "service" not in state:
            state["service"] = Service(await engines.backend(backend_spec), settings, metrics)
        try:
            yield
        finally:  # uvicorn has let in-flight requests finish or cut them; cancel what is left
            await state["service"].cancel_all()
            if backend is None:
                await engines.close()

    app = FastAPI(title="ponder", summary="Budget-aware test-time compute, OpenAI-compatible.",
                  lifespan=lifespan, responses=_ERRORS)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=ROUTES)

    def service() -> Service:
        if "service" not in state:
            raise ApiError(503, "the engine is still starting", type="server_error")
        return state["service"]

    def caller(authorization: str | None = Header(None)) -> str:
        return authenticate(authorization, settings.api_keys)

    @app.get("/health")
    async def health() -> dict[str, str]:
        service()
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus() -> Response:
        usage = state["service"].backend.usage if "service" in state else None
        return Response(metrics.render(usage), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(_: str = Depends(caller)) -> dict[str, Any]:
        model = {"id": settings.model_name, "object": "model", "created": 0, "owned_by": "ponder"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, request: Request, key: str = Depends(caller)) -> Response:
        return await _respond(body, request, key, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request, key: str = Depends(caller)) -> Response:
        return await _respond(body, request, key, chat=False)

    async def _respond(body: ChatCompletionRequest | CompletionRequest, request: Request, key: str,
                       *, chat: bool) -> Response:
        serving = service()
        plan = make_plan(body, settings)
        serving.check_prompt(plan, "messages" if chat else "prompt")
        envelope = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "created": int(time.time()), "model": settings.model_name,
        }
        release = limiter.acquire(key)
        if body.stream:  # the stream gives the key's slot back when it ends, however it ends
            kind = "chat.completion.chunk" if chat else "text_completion"
            events = sse_events(
                lambda listener: serving.track(serving.run(plan, listener)),
                lambda fields: {**envelope, "object": kind, **fields},
                chat=chat, trace=body.trace, on_error=errors.to_api_error,
            )
            return StreamingResponse(_released(events, release), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            outcome = await _until_disconnected(serving.track(serving.run(plan)), request)
        finally:
            release()
        if outcome is None:
            return Response(status_code=499)  # nobody is listening; the work was cancelled
        render = chat_completion if chat else text_completion
        extras = ponder_block(outcome.result, outcome.decision, body.trace)
        return JSONResponse(render(outcome.result, outcome.thinking, extras=extras, **envelope))

    return app


async def _released(events: AsyncIterator[str], release: Callable[[], None]) -> AsyncIterator[str]:
    """``events``, then the key's slot back, however the stream ends."""
    try:
        async for event in events:
            yield event
    finally:
        release()


async def _until_disconnected(task: asyncio.Task[Outcome], request: Request) -> Outcome | None:
    """The run's outcome, or None after cancelling it because the client went away."""
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
    finally:
        if not task.done():  # this handler was cancelled (shutdown): the run goes with it
            task.cancel()
