"""What the operator allows: API keys, body size, budget caps, requests in flight per key."""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder.budgets import Budget
from ponder.server.errors import ApiError
from ponder.server.schemas import RequestBudget


def authenticate(authorization: str | None, keys: tuple[str, ...]) -> str:
    """The caller's key (``"anonymous"`` when the server has none); 401 for a bad or absent one.
    Keys are compared in constant time."""
    if not keys:
        return "anonymous"
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                       type="authentication_error", code="invalid_api_key")
    for key in keys:
        if hmac.compare_digest(token.strip().encode(), key.encode()):
            return key
    raise ApiError(401, "invalid API key", type="authentication_error", code="invalid_api_key")


class KeyLimiter:
    """At most ``limit`` requests in flight per key; one more is refused at once (429), never
    queued, so a client that floods cannot hold others' work hostage."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight: Counter[str] = Counter()

    def acquire(self, key: str) -> Callable[[], None]:
        """Count one request for ``key``; the returned function (safe to call twice) ends it."""
        if self.in_flight[key] >= self.limit:
            raise ApiError(429, f"too many requests in flight for this key (limit {self.limit})",
                           type="rate_limit_error", code="concurrency_limit")
        self.in_flight[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight[key] -= 1
                if not self.in_flight[key]:
                    del self.in_flight[key]

        return release


def capped_budget(asked: RequestBudget | None, caps: RequestBudget, effort_tokens: int | None) -> Budget:
    """The request's Budget: what it asked, refused above a cap, each unset limit at its cap.
    ``effort_tokens`` (from ``reasoning_effort``) fills an unset generated-token limit."""
    asked_fields = asked.model_dump(exclude_none=True) if asked else {}
    if effort_tokens is not None:
        asked_fields.setdefault("generated_tokens", effort_tokens)
    for name, value in asked_fields.items():
        cap = getattr(caps, name)
        if cap is not None and value > cap:
            raise ApiError(400, f"budget.{name}: asks for {value}, over the server's cap of {cap}",
                           param=f"budget.{name}", code="over_cap")
    fields: dict[str, Any] = {**caps.model_dump(exclude_none=True), **asked_fields}
    generated = fields.get("generated_tokens")
    thinking = fields.pop("thinking_tokens", None)
    if thinking is not None:  # thinking tokens are generated tokens: the tighter limit holds
        fields["generated_tokens"] = thinking if generated is None else min(generated, thinking)
    if "latency_s" in fields:
        fields["seconds"] = fields.pop("latency_s")
    return Budget(**fields)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before anything parses it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = ApiError(413, f"the request body is over the server's limit of {self.max_bytes} bytes",
                         param="body", code="body_too_large")
        await error.response()(scope, receive, send)
