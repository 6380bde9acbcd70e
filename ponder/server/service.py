"""Running one request's plan on the shared backend: its own context and ledger, 'auto' if
asked, every run tracked so that shutdown can cancel what is left. A run that sees the engine
die tells the supervisor, which starts a new one, and fails with the 503 that says so."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from ponder.backends.base import Backend
from ponder.budgets import Ledger
from ponder.core.result import Result
from ponder.core.thinking import ThinkingFormat
from ponder.errors import BackendDeadError
from ponder.runtime import Run
from ponder.server.engine import EngineSupervisor
from ponder.server.errors import ApiError
from ponder.server.metrics import Metrics
from ponder.server.observe import Listener, ObservedBackend
from ponder.server.plan import Plan, build_strategy
from ponder.server.settings import ServerSettings
from ponder.strategies.auto import decide, run_decision
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT
from ponder.strategies.profile import Profile, load_profile

T = TypeVar("T")


@dataclass
class Outcome:
    result: Result
    thinking: ThinkingFormat
    """The chosen strategy's thinking format, to split the answer from the reasoning."""
    decision: dict[str, Any] | None
    """What 'auto' chose and why; None for a named strategy."""


class Service:
    """What the routes share: the engine, the settings, the metrics and the runs in flight."""

    def __init__(self, engine: EngineSupervisor, settings: ServerSettings, metrics: Metrics,
                 model: str | None = None) -> None:
        """``model``: what the backend serves, known before it loads, which the profile of
        'auto' must have been made for."""
        self.engine, self.settings, self.metrics, self.model = engine, settings, metrics, model
        self.runs: set[asyncio.Task[Any]] = set()
        self._profile: Profile | None = None

    @property
    def backend(self) -> Backend:
        """The working engine, or the 503 that says why there is none."""
        return self.engine.backend()

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            self._profile = load_profile(
                self.settings.profiles, model=self.model, force=self.settings.force_profile
            )
        return self._profile

    def check_prompt(self, plan: Plan, param: str) -> None:
        """Refuse a prompt longer than the operator allows (rendered as the strategy will)."""
        system_prompt = plan.strategy.system_prompt if plan.strategy else DEFAULT_SYSTEM_PROMPT
        length = len(self.backend.render(plan.problem, system_prompt))
        cap = self.settings.max_prompt_tokens
        if length > cap:
            raise ApiError(400, f"{param}: the prompt is {length} tokens, over the server's cap "
                           f"of {cap}", param=param, code="prompt_too_long")

    async def run(self, plan: Plan, listener: Listener | None = None) -> Outcome:
        """The plan's strategy (chosen by 'auto' first if need be) under its budget."""
        shared = self.backend
        backend = ObservedBackend(shared, listener) if listener else shared
        ctx = Run(backend=backend, ledger=Ledger(plan.budget), rng=random.Random(plan.seed))
        started = time.perf_counter()
        strategy, decision = plan.strategy, None
        self.metrics.in_flight.inc()
        try:
            if strategy is None:
                chosen = await decide(plan.problem, ctx, self.profile)
                decision = chosen.to_dict()
                self.metrics.auto_choices.labels(str(chosen.strategy.get("name")), chosen.difficulty).inc()
                if listener:
                    listener({"event": "auto", **decision})
                strategy = build_strategy(chosen.strategy, plan.sampling)
                result = await run_decision(strategy, plan.problem, ctx, chosen)
            else:
                result = await strategy.run(plan.problem, ctx)
        except BackendDeadError as exc:
            raise self.engine.died(shared, str(exc)) from exc
        except asyncio.CancelledError:
            self.metrics.cancelled.inc()
            raise
        finally:
            self.metrics.in_flight.dec()
        result.usage = ctx.ledger.spent  # the probes of 'auto' included
        result.usage.wall_seconds = time.perf_counter() - started
        self.metrics.record_result(result)
        return Outcome(result, strategy.thinking, decision)

    def track(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` as a task that shutdown can cancel."""
        task = asyncio.create_task(work)
        self.runs.add(task)
        task.add_done_callback(self.runs.discard)
        return task

    async def cancel_all(self) -> None:
        """Cancel every run still in flight (aborting its engine requests) and wait for them."""
        for task in list(self.runs):
            task.cancel()
        await asyncio.gather(*self.runs, return_exceptions=True)
