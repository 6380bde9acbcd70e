"""The event loop and backend a process keeps across the experiment jobs it runs.

The in-process vLLM engine belongs to the event loop that started it, so every job of a
process runs on one long-lived loop. Hydra's basic launcher runs a sweep's jobs one after
another in one process: a job whose backend config equals the last one's reuses its engine
(no second start-up); one with another config closes the process's engine pool first (the
old engine and every engine or client a verifier used), so one engine at most is alive.
Launchers that run jobs in worker processes (joblib, submitit, Ray) get one engine per worker,
closed when its job ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from ponder.backends.base import Backend
from ponder.backends.pool import engines

log = logging.getLogger(__name__)
T = TypeVar("T")


class EngineHost:
    """Runs coroutines on one loop and hands out the backend for a config, reusing it."""

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._backend: Backend | None = None
        self._spec: dict[str, Any] | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to completion on the host's loop."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coroutine)

    async def backend(self, spec: Mapping[str, Any]) -> tuple[Backend, bool]:
        """The backend for ``spec``, and whether it was reused from the job before."""
        if self._backend is not None and dict(spec) == self._spec:
            return self._backend, True
        await self.release()
        self._backend = await engines.backend(spec)
        self._spec = dict(spec)
        return self._backend, False

    async def release(self) -> None:
        """Close the pool: the backend and every engine or client a verifier used (a judge
        on another model, a PRM); the next job builds its own."""
        backend, self._backend, self._spec = self._backend, None, None
        if backend is not None:
            log.info("closing the %s backend", backend.name)
        await engines.close()

    def close(self) -> None:
        """Release the backend and close the loop. Idempotent."""
        if self._runner is None:
            return
        try:
            self._runner.run(self.release())
        finally:
            self._runner.close()
            self._runner = None
