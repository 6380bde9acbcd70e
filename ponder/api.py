"""The Python entry points: ``await asolve(...)`` at the core, ``solve(...)`` a thin sync wrapper.

The sync wrapper runs every call on one long-lived event loop, because the in-process engine
belongs to the loop that started it: a fresh ``asyncio.run`` per call would strand it. Engines
and clients come from the process's engine pool, so repeated calls with one backend config
share one engine or client; ``shutdown()`` closes them all.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any

from ponder.backends.base import Backend
from ponder.backends.pool import engines
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.registry import describe_validation_error
from ponder.core.result import Result
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies import Strategy, strategies

StrategySpec = Strategy | Mapping[str, Any] | str
BackendSpec = Backend | Mapping[str, Any] | str
BudgetSpec = Budget | Mapping[str, Any] | None

_runner: asyncio.Runner | None = None


def build_budget(spec: BudgetSpec) -> Budget:
    from pydantic import ValidationError

    if spec is None:
        return Budget()
    if isinstance(spec, Budget):
        return spec
    try:
        return Budget(**{k: v for k, v in dict(spec).items() if v is not None})
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("budget", exc)) from None


def coerce_problem(problem: Problem | str | Mapping[str, Any]) -> Problem:
    from pydantic import ValidationError

    try:
        return Problem.coerce(problem)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("problem", exc)) from None


async def asolve(
    problem: Problem | str | Mapping[str, Any],
    *,
    strategy: StrategySpec = "self_consistency",
    backend: BackendSpec = "embedded",
    budget: BudgetSpec = None,
    seed: int = 0,
) -> Result:
    """Solve one problem with a strategy, within a budget.

    ``strategy`` is a registry name, a config mapping with ``name``, or a Strategy object;
    ``backend`` a model name for the in-process engine ('embedded', a folder, a hub name),
    a config mapping with ``kind``, or a Backend; ``budget`` a Budget or its fields.
    Everything is validated before the engine is touched.
    """
    problem = coerce_problem(problem)
    strategy_obj = strategies.build(strategy)
    limits = build_budget(budget)
    engine = await engines.backend(backend)
    ctx = Run(backend=engine, ledger=Ledger(limits), rng=random.Random(seed))
    started = time.perf_counter()
    result = await strategy_obj.run(problem, ctx)
    result.usage.wall_seconds = time.perf_counter() - started
    return result


def solve(problem: Problem | str | Mapping[str, Any], **options: Any) -> Result:
    """Synchronous ``asolve``; see there for the options. Not for use inside an event loop."""
    global _runner
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise BadRequestError("solve() was called inside a running event loop; use `await asolve(...)`")
    if _runner is None:
        _runner = asyncio.Runner()
    return _runner.run(asolve(problem, **options))


def shutdown() -> None:
    """Close every engine and client in the process's pool (in-process vLLM engines, PRM
    engines, HTTP clients) and ``solve``'s event loop: at exit, or to free memory. Inside an
    event loop, ``await ponder.backends.pool.engines.close()`` instead."""
    global _runner
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise BadRequestError(
            "shutdown() was called inside a running event loop; use "
            "`await ponder.backends.pool.engines.close()`"
        )
    runner, _runner = _runner, None
    if runner is None and len(engines) == 0:
        return
    with runner or asyncio.Runner() as loop:
        loop.run(engines.close())
