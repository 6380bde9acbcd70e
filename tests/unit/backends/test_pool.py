"""The engine pool over fakes: one object per config, a new one after close or death, every
kind closed by one ``close``, bad specs refused before anything is built."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ponder.backends.factory import backend_key
from ponder.backends.openai_backend import OpenAIBackend
from ponder.backends.pool import EnginePool
from ponder.backends.scripted import ScriptedBackend
from ponder.core.pooling import PoolingServerSettings
from ponder.errors import BadRequestError, UnknownNameError

CLOSED_URL = "http://127.0.0.1:9/v1"  # nothing listens there; no test sends a request


class Engine(ScriptedBackend):
    """Stands in for an in-process engine: it can be closed, or die."""

    def __init__(self, spec: Any) -> None:
        super().__init__(lambda request, sample, call: None)
        self.spec = spec
        self.closed = 0
        self.died = False

    @property
    def alive(self) -> bool:
        return not self.closed and not self.died

    async def close(self) -> None:
        self.closed += 1


class Pooling:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.max_model_len = 64
        self.alive = True

    async def pool(self, prompts: list[list[int]], separator_id: int) -> list:
        return []

    async def close(self) -> None:
        self.alive = False


class CharTokenizer:
    eos_token_id = 0

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(map(chr, ids))


TOKENIZER = CharTokenizer()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every engine and pooling client the pool builds, in order; each build yields once, as
    a real start-up awaits."""
    made: list[Any] = []

    async def open_backend(spec: Any) -> Engine:
        await asyncio.sleep(0)
        made.append(Engine(spec))
        return made[-1]

    async def open_pooling(settings: Any) -> Pooling:
        await asyncio.sleep(0)
        made.append(Pooling(settings))
        return made[-1]

    monkeypatch.setattr("ponder.backends.pool.open_backend", open_backend)
    monkeypatch.setattr("ponder.backends.pool.open_pooling", open_pooling)
    return made


def _openai(**overrides: Any) -> dict[str, Any]:
    return {"kind": "openai", "base_url": CLOSED_URL, "model": "m", "tokenizer": TOKENIZER,
            **overrides}


# -- keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("embedded", {"kind": "vllm", "model": "embedded"}, True),
        ("embedded", {"model": "embedded", "max_model_len": 2048, "seed": None}, True),
        ("embedded", {"model": "embedded", "max_num_seqs": 8}, False),
        ("embedded", "other-model", False),
        (_openai(), _openai(), True),
        (_openai(), _openai(model="n"), False),
        (_openai(), {"kind": "vllm", "model": "m"}, False),
    ],
    ids=["name-and-mapping", "defaults-spelled-out", "other-setting", "other-model",
         "openai-same", "openai-other-model", "openai-vs-vllm"],
)
def test_specs_meaning_the_same_engine_share_a_key(a: Any, b: Any, same: bool) -> None:
    assert (backend_key(a) == backend_key(b)) is same


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ({"kind": "tgi"}, UnknownNameError, "unknown backend kind 'tgi'"),
        ({"model": "embedded", "max_num_seqs": 0}, BadRequestError, "backend.max_num_seqs"),
        ({"model": "embedded", "colour": "red"}, BadRequestError, "backend.colour"),
    ],
    ids=["unknown-kind", "out-of-range", "unknown-field"],
)
async def test_a_bad_spec_is_refused_before_anything_is_built(
    built: list, spec: dict, error: type, message: str
) -> None:
    pool = EnginePool()
    with pytest.raises(error, match=message):
        await pool.backend(spec)
    assert built == [] and len(pool) == 0


# -- one object per config ---------------------------------------------------------------
async def test_the_same_config_gets_the_same_engine_and_another_gets_another(built: list) -> None:
    pool = EnginePool()
    first = await pool.backend("embedded")
    assert await pool.backend({"kind": "vllm", "model": "embedded"}) is first
    other = await pool.backend({"model": "embedded", "max_num_seqs": 8})
    assert other is not first and len(built) == len(pool) == 2


async def test_concurrent_first_requests_build_one_engine(built: list) -> None:
    pool = EnginePool()
    backends = await asyncio.gather(*(pool.backend("embedded") for _ in range(5)))
    assert len(built) == 1 and all(b is built[0] for b in backends)


async def test_a_backend_object_is_used_as_it_is_and_not_held() -> None:
    pool, backend = EnginePool(), ScriptedBackend.from_script([])
    assert await pool.backend(backend) is backend
    assert len(pool) == 0


async def test_pooling_clients_are_one_per_settings(built: list) -> None:
    pool = EnginePool()
    settings = PoolingServerSettings("http://prm:8000", 4096)
    client = await pool.pooling(settings)
    assert await pool.pooling(PoolingServerSettings("http://prm:8000", 4096)) is client
    assert await pool.pooling(PoolingServerSettings("http://prm:8000", 512)) is not client
    assert len(built) == 2


async def test_an_openai_mapping_builds_one_client_once() -> None:
    pool = EnginePool()
    backend = await pool.backend(_openai())
    assert isinstance(backend, OpenAIBackend)
    assert all([await pool.backend(_openai()) is backend for _ in range(10)])
    await pool.close()
    assert backend._client.is_closed() and not backend.alive


# -- closing and rebuilding -----------------------------------------------------------------
async def test_close_closes_every_kind_and_a_later_request_builds_anew(built: list) -> None:
    pool = EnginePool()
    engine = await pool.backend("embedded")
    client = await pool.pooling(PoolingServerSettings("http://prm:8000", 4096))
    await pool.close()
    assert engine.closed == 1 and not client.alive and len(pool) == 0
    await pool.close()  # idempotent: nothing is closed twice
    assert engine.closed == 1
    again = await pool.backend("embedded")
    assert again is not engine and again.closed == 0


@pytest.mark.parametrize("how", ["closed", "died"])
async def test_an_engine_that_was_closed_or_died_is_rebuilt(built: list, how: str) -> None:
    pool = EnginePool()
    engine = await pool.backend("embedded")
    if how == "closed":
        await engine.close()
    else:
        engine.died = True
    fresh = await pool.backend("embedded")
    assert fresh is not engine and fresh.alive and len(pool) == 1
    assert engine.closed >= 1  # what was left of the old one is shut down too
    assert await pool.backend("embedded") is fresh


async def test_a_failed_build_is_tried_again_on_the_next_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []

    async def flaky(spec: Any) -> Engine:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("no memory")
        return Engine(spec)

    monkeypatch.setattr("ponder.backends.pool.open_backend", flaky)
    pool = EnginePool()
    with pytest.raises(RuntimeError, match="no memory"):
        await pool.backend("embedded")
    assert (await pool.backend("embedded")).alive and len(attempts) == 2


async def test_a_caller_cancelled_mid_start_leaves_the_engine_to_the_pool(built: list) -> None:
    pool = EnginePool()
    task = asyncio.create_task(pool.backend("embedded"))
    await asyncio.sleep(0)  # the build has begun
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pool.close()  # waits for the start, then closes what it started
    assert len(built) == 1 and built[0].closed == 1


async def test_one_failing_close_does_not_keep_the_others_open(built: list) -> None:
    pool = EnginePool()
    broken = await pool.backend("embedded")
    other = await pool.backend("other-model")

    async def refuse() -> None:
        raise RuntimeError("engine core gone")

    broken.close = refuse
    await pool.close()
    assert other.closed == 1 and len(pool) == 0
