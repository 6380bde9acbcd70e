"""The engine pool: every engine and client a process uses, built once per config.

Strategies and verifiers name the models they need (a draft model, a judge's own server, a
PRM); the pool builds each the first time and hands the same object to every later request,
so a judge scored a hundred times opens one client and one tokenizer, and an in-process
engine is started once per ``VllmConfig``. One that was closed or died is built again on the
next request. ``close`` shuts everything down: ``ponder.shutdown()``, ``ponder run``'s engine
host and the server's shutdown call it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, TypeVar

from ponder.backends.base import Backend
from ponder.backends.factory import BackendSpec, backend_key, open_backend
from ponder.backends.pooling import open_pooling
from ponder.core.pooling import PoolingClient, PoolingSettings

log = logging.getLogger(__name__)


class _Owned(Protocol):
    @property
    def alive(self) -> bool: ...

    async def close(self) -> None: ...


T = TypeVar("T", bound=_Owned)


class EnginePool:
    """Engines and clients by config. Not thread-safe: use it from one event loop (an
    in-process engine belongs to the loop that started it)."""

    def __init__(self) -> None:
        self._open: dict[Hashable, Any] = {}
        self._starting: dict[Hashable, asyncio.Future[Any]] = {}
        """Builds in flight, so concurrent first requests for one config build it once."""

    async def backend(self, spec: Backend | BackendSpec) -> Backend:
        """The backend ``spec`` names: a model name for the in-process engine, or a config
        mapping with ``kind``. A Backend object is used as it is (and not closed here)."""
        if isinstance(spec, Backend):
            return spec
        return await self._get(backend_key(spec), lambda: open_backend(spec))

    async def pooling(self, settings: PoolingSettings) -> PoolingClient:
        """The pooling engine or server client for a PRM with these settings."""
        return await self._get(settings, lambda: open_pooling(settings))

    def __len__(self) -> int:
        """How many engines and clients the pool holds."""
        return len(self._open)

    async def close(self) -> None:
        """Close every engine and client the pool built; the next request builds anew.
        Idempotent. A failure to close one is logged and the rest are still closed."""
        if self._starting:  # a build finishing later would outlive the close
            await asyncio.gather(*self._starting.values(), return_exceptions=True)
        owned, self._open = list(self._open.values()), {}
        for item in owned:
            await _close(item)

    async def _get(self, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        item = self._open.get(key)
        if item is not None and item.alive:
            return item
        starting = self._starting.get(key)
        if starting is None:
            dead = self._open.pop(key, None)
            starting = asyncio.ensure_future(self._build(key, build, dead))
            self._starting[key] = starting
        # shielded: a caller cancelled mid-start does not strand a half-started engine
        return await asyncio.shield(starting)

    async def _build(self, key: Hashable, build: Callable[[], Awaitable[T]], dead: T | None) -> T:
        try:
            if dead is not None:
                log.info("rebuilding %r: the one before was closed or died", key)
                await _close(dead)  # what is left of it (a dead engine's processes)
            item = await build()
            self._open[key] = item
            return item
        finally:
            del self._starting[key]


async def _close(item: _Owned) -> None:
    try:
        await item.close()
    except Exception:  # closing is best effort: the rest must still be closed
        log.exception("closing %r failed", item)


engines = EnginePool()
"""The process's pool."""
