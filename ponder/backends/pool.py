"""The engine pool: every engine and client a process uses, built once per config.

Strategies and verifiers name the models they need (a draft model, a judge's own server);
the pool builds each the first time and hands the same object to every later request, so a
judge scored a hundred times opens one client and one tokenizer. ``close`` shuts everything
down: ``ponder.shutdown()``, the CLI's exit and the server's shutdown call it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ponder.backends.base import Backend
from ponder.backends.factory import build_backend


class EnginePool:
    """Backends by config. Not thread-safe: use it from one event loop."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    async def backend(self, spec: Backend | str | Mapping[str, Any]) -> Backend:
        """The backend ``spec`` names (a Backend object is used as it is)."""
        if isinstance(spec, Backend | str) or spec.get("kind", "vllm") == "vllm":
            # In-process engines are shared per config by the engine class (and restarted
            # there if one died).
            return await build_backend(spec)
        key = json.dumps(dict(spec), sort_keys=True, default=str)
        if key not in self._backends:
            self._backends[key] = await build_backend(spec)
        return self._backends[key]

    async def close(self) -> None:
        """Close every backend the pool built. Idempotent."""
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            await backend.close()


engines = EnginePool()
"""The process's pool."""
