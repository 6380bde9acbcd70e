"""Pooling clients: where a process reward model's class logits come from, one row per step
separator of each prompt, and a learned verifier's features, one embedding per prompt.

vLLM serves a PRM as the ``token_classify`` task with STEP pooling: ``PoolingParams(
step_tag_id=...)`` keeps only the rows at the separator token. An embedding is the ``embed``
task on the causal LM converted by vLLM (``convert="embed"``) with LAST or MEAN pooling, raw
(no normalization: the learned head standardizes its inputs). ``PoolingEngine`` runs either in
this process (vLLM's pooling runner, separate from the generator's engine); ``PoolingServer``
asks a vLLM server's ``/pooling`` endpoint for a PRM's rows. The engine pool builds one of either per settings
(``EnginePool.pooling``) and closes them with everything else; the settings and the client's
shape are in ``ponder.core.pooling``, where the verifier reads them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import httpx

from ponder.backends.vllm_engine import (
    VllmConfig,
    apply_cpu_environment,
    engine_errors,
    engine_on_cpu,
    shutdown_engine,
)
from ponder.core.pooling import (
    Pooled,
    PoolingClient,
    PoolingEngineSettings,
    PoolingServerSettings,
    PoolingSettings,
)
from ponder.errors import BackendDeadError, BackendError, BadRequestError

log = logging.getLogger(__name__)


def engine_task(settings: PoolingEngineSettings) -> str:
    """The vLLM pooling task an engine with ``settings`` serves."""
    return "token_classify" if settings.embedding is None else "embed"


def _what(settings: PoolingEngineSettings) -> str:
    return "PRM" if settings.embedding is None else "embedding"


async def open_pooling(settings: PoolingSettings) -> PoolingClient:
    """A new client for ``settings``, owned by the caller (the pool)."""
    if isinstance(settings, PoolingServerSettings):
        return PoolingServer(settings.base_url, settings.max_model_len)
    return await PoolingEngine.start(settings)


class PoolingEngine:
    """An in-process ``AsyncLLM`` with the pooling runner, separate from the generator's."""

    def __init__(self, engine: Any, settings: PoolingEngineSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.max_model_len: int = engine.model_config.max_model_len
        self._request_ids = itertools.count()
        self._closed = False

    @classmethod
    async def start(cls, settings: PoolingEngineSettings) -> PoolingEngine:
        from vllm.config import PoolerConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        on_cpu = engine_on_cpu()
        if on_cpu:
            apply_cpu_environment(VllmConfig(model=settings.model_path))
        tokens = settings.classifier_tokens
        if settings.embedding is not None:
            convert, overrides = "embed", {}
            pooler = PoolerConfig(seq_pooling_type=settings.embedding)
        else:
            convert = "auto" if tokens is None else "classify"
            overrides = (
                {}  # vLLM's config takes a dict here, not None
                if tokens is None
                else {"classifier_from_token": list(tokens), "method": "no_post_processing"}
            )
            pooler = PoolerConfig(tok_pooling_type="STEP")
        args = AsyncEngineArgs(
            model=settings.model_path,
            runner="pooling",
            convert=convert,
            hf_overrides=overrides,
            pooler_config=pooler,
            dtype="float32" if on_cpu else "auto",
            enforce_eager=on_cpu,
            max_model_len=settings.max_model_len,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            disable_log_stats=True,
        )
        log.info("starting the %s engine for %s", _what(settings), settings.model_path)
        try:
            engine = cls(AsyncLLM.from_engine_args(args), settings)
        except Exception as exc:  # engine start-up failures surface as assorted types
            raise BackendDeadError(f"could not start the {_what(settings)} engine: {exc}") from exc
        if engine_task(settings) not in await engine.engine.get_supported_tasks():
            await engine.close()
            if settings.embedding is not None:
                raise BadRequestError(f"model {settings.model_path!r} gives no embeddings")
            raise BadRequestError(
                f"model {settings.model_path!r} has no token classification head; set "
                "classifier_tokens to read step scores from its LM head"
            )
        return engine

    @property
    def alive(self) -> bool:
        return not self._closed and not self.engine.errored

    async def pool(self, prompts: list[list[int]], separator_id: int | None) -> list[Pooled]:
        if (separator_id is None) != (self.settings.embedding is not None):
            wanted = "None" if self.settings.embedding is not None else "a separator token id"
            raise BadRequestError(f"the {_what(self.settings)} engine takes {wanted} as separator_id")
        return list(await asyncio.gather(*(self._encode(ids, separator_id) for ids in prompts)))

    async def _encode(self, token_ids: list[int], separator_id: int | None) -> Pooled:
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        what = _what(self.settings)
        if self._closed:
            raise BackendDeadError(f"this {what} engine was closed")
        # raw outputs: a PRM's softmax is taken by the verifier, the same way for engine and
        # server; an embedding is standardized by the head that reads it
        params = PoolingParams(
            task=engine_task(self.settings), step_tag_id=separator_id, use_activation=False
        )
        prompt = TokensPrompt(prompt_token_ids=token_ids)
        request_id = f"ponder-pool-{next(self._request_ids)}"
        final = None
        with engine_errors(what, self._mark_closed):
            async for final in self.engine.encode(prompt, params, request_id):
                pass
        if final is None:
            raise BackendError(f"{what} request {request_id} ended without output")
        data = final.outputs.data
        rows = data.tolist() if data.ndim == 2 else [data.tolist()]
        return Pooled(rows, len(token_ids), final.num_cached_tokens or 0)

    def _mark_closed(self) -> None:
        self._closed = True

    async def close(self) -> None:
        """Shut the engine down (also one that died). Idempotent."""
        self._closed = True
        shutdown_engine(self.engine)


class PoolingServer:
    """A vLLM server's ``/pooling`` endpoint. The server decides the separator rows: start it
    with ``--pooler-config '{"task": "token_classify", "tok_pooling_type": "STEP",
    "step_tag_id": ID}'`` (or ALL pooling: every token's row comes back and is picked here)."""

    def __init__(
        self, base_url: str, max_model_len: int, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_model_len = max_model_len
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        """Opened on first use, inside the event loop that uses it."""
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    async def pool(self, prompts: list[list[int]], separator_id: int | None) -> list[Pooled]:
        if self._closed:
            raise BackendDeadError(f"the PRM client for {self.base_url} was closed")
        if self._client is None:
            # no read timeout: a large batch takes long; the budget's deadline cuts it instead
            timeout = httpx.Timeout(None, connect=10.0)
            self._client = httpx.AsyncClient(transport=self._transport, timeout=timeout)
        body = {"input": prompts, "task": "token_classify", "use_activation": False}
        url = f"{self.base_url}/pooling"
        try:
            response = await self._client.post(url, json=body)
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach the PRM server at {url}: {exc!r}") from exc
        if response.status_code >= 400:
            detail = response.text
            error = BadRequestError if response.status_code < 500 else BackendError
            raise error(f"the PRM server at {url} answered {response.status_code}: {detail}")
        items = sorted(response.json()["data"], key=lambda item: item["index"])
        if len(items) != len(prompts) or any(
            rows and not isinstance(rows[0], list) for rows in (item["data"] for item in items)
        ):
            raise BackendError(f"the PRM server at {url} did not return per-token rows per prompt")
        return [Pooled(item["data"], len(ids)) for item, ids in zip(items, prompts)]

    async def close(self) -> None:
        """Close the HTTP connection pool. Idempotent."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
