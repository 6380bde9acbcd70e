"""The FastAPI app of ``ponder serve``: OpenAI's chat/completions, completions and models
routes over one shared engine, plus /health and /metrics.

Each request is validated (schemas), authenticated and counted against its key's limit
(limits), planned (plan: strategy, budget under the operator's caps), then run as its own
task with its own ledger (service). A client that goes away cancels its run: a stream through
the response's cancellation (streaming), a plain request by a watch on the connection. The
engine loads in the background once the server listens, and is started anew if it dies
(engine): until it works, /health and the API answer 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from ponder.backends.base import Backend
from ponder.backends.pool import engines
from ponder.server import errors
from ponder.server.engine import EngineSupervisor, State
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


class HealthResponse(BaseModel):
    """What /health says: 200 with 'ok', or 503 with why (and a Retry-After header)."""

    status: State
    detail: str | None = None


def create_app(
    settings: ServerSettings | None = None,
    *,
    backend: Backend | None = None,
    backend_spec: Mapping[str, Any] | str = "embedded",
    announce: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app. With ``backend`` it serves that one (tests pass a scripted backend), which its
    caller owns, with the engine pool. Otherwise it takes ``backend_spec`` from the engine pool,
    in the background once it starts (and again if the engine dies) and, owning the process's
    engines, closes the pool when it stops: that backend and every engine or client requests
    used (a judge's, a PRM's). ``announce(line)`` hears 'ready' and giving up (default: the log)."""
    settings = settings or ServerSettings()
    metrics = Metrics()
    limiter = KeyLimiter(settings.per_key_concurrency)
    loud = {"announce": announce} if announce else {}
    if backend is not None:
        engine = EngineSupervisor(settings, backend=backend, **loud)
    else:
        engine = EngineSupervisor(settings, lambda: engines.backend(backend_spec), **loud)
    served = backend.model if backend is not None else (
        backend_spec.get("model") if isinstance(backend_spec, Mapping) else backend_spec
    )
    serving = Service(engine, settings, metrics, served)
    if settings.profiles is not None:  # the operator's: a bad file or another model's fails now
        serving.profile

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:  # uvicorn has let in-flight requests finish or cut them; cancel what is left
            await serving.cancel_all()
            loading = engine.state == "starting"
            await engine.close()
            if backend is None:
                if loading:  # the pool's close would wait the whole start out
                    from ponder.backends.vllm_engine import end_engine_starts

                    await asyncio.to_thread(end_engine_starts)
                await engines.close()

    app = FastAPI(title="ponder", summary="Budget-aware test-time compute, OpenAI-compatible.",
                  lifespan=lifespan, responses=_ERRORS)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=ROUTES)

    def caller(authorization: str | None = Header(None)) -> str:
        return authenticate(authorization, settings.api_keys)

    @app.get("/health", responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        status, reason, retry_after = engine.health()
        body = HealthResponse(status=status, detail=reason or None).model_dump(exclude_none=True)
        if status == "ok":
            return JSONResponse(body)
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
        return JSONResponse(body, status_code=503, headers=headers)

    @app.get("/metrics")
    async def prometheus() -> Response:
        current = engine.current
        return Response(metrics.render(current.usage if current else None), media_type=CONTENT_TYPE_LATEST)

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
