"""One real vLLM engine with the embedded model for the whole test session."""

from __future__ import annotations

import pytest
import pytest_asyncio

from ponder.backends.vllm_engine import VllmBackend

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine() -> VllmBackend:
    backend = await VllmBackend.shared()
    yield backend
    await backend.close()
