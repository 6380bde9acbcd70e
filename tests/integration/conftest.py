"""One real vLLM engine with the embedded model for the whole test session: the process
pool's, so strategies and verifiers naming 'embedded' get this same engine."""

from __future__ import annotations

import pytest_asyncio

from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine() -> VllmBackend:
    backend = await engines.backend("embedded")
    yield backend
    await engines.close()
