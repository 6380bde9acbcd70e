"""Prometheus metrics of one server, on a registry of its own (two apps in one process, as in
tests, never collide)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder.core.result import Result
from ponder.core.usage import Usage

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ponder_requests", "Requests answered, by route and HTTP status.",
            ["route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "ponder_request_latency_seconds", "Time from request to last byte, by route.",
            ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.tokens = Counter(
            "ponder_tokens", "Tokens by kind: prompt, cached_prompt (prefix-cache hits), "
            "generated, thinking, cancelled.", ["kind"], registry=self.registry,
        )
        self.budget_exhausted = Counter(
            "ponder_budget_exhaustions", "Runs the budget ended, by the limit that ended them.",
            ["limit"], registry=self.registry,
        )
        self.cancelled = Counter(
            "ponder_cancelled_requests", "Requests whose work was cancelled (client gone, shutdown).",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "ponder_requests_in_flight", "Strategy runs in progress.", registry=self.registry,
        )
        self.engine_tokens = Gauge(
            "ponder_engine_tokens", "Tokens the shared engine has processed since it started, by "
            "kind, every request included (cancelled work too).", ["kind"], registry=self.registry,
        )
        self.auto_choices = Counter(
            "ponder_auto_choices", "Strategies chosen by 'auto', by strategy name and difficulty.",
            ["strategy", "difficulty"], registry=self.registry,
        )

    def record_result(self, result: Result) -> None:
        usage = result.usage
        self.tokens.labels("prompt").inc(usage.prompt_tokens)
        self.tokens.labels("cached_prompt").inc(usage.cached_prompt_tokens)
        self.tokens.labels("generated").inc(usage.generated_tokens)
        self.tokens.labels("thinking").inc(usage.thinking_tokens)
        self.tokens.labels("cancelled").inc(usage.cancelled_tokens)
        if result.budget_exhausted:
            self.budget_exhausted.labels(result.exhausted_by or "unknown").inc()

    def render(self, engine_usage: Usage | None = None) -> bytes:
        """The text exposition; ``engine_usage`` (the backend's running totals) is read now."""
        if engine_usage is not None:
            for kind in ("prompt_tokens", "cached_prompt_tokens", "generated_tokens", "cancelled_tokens"):
                self.engine_tokens.labels(kind.removesuffix("_tokens")).set(getattr(engine_usage, kind))
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: counts every HTTP response by route and status, and times it to its
    last byte (for a stream, the end of the stream). Unknown paths share one label."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: frozenset[str]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        started, status = time.perf_counter(), 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
