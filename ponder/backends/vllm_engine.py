"""In-process vLLM (``AsyncLLM``): the fast path. One engine per process and config, shared by
every request and strategy through the engine pool (``ponder.backends.pool``), prefix caching
on, requests submitted as token ids.

On a machine without a GPU the CPU build of vLLM is used with settings measured to matter
there (all cores bound to compute, float32, eager mode, a 2 GiB KV cache); each is a default
the caller can override in ``VllmConfig``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ponder.backends.base import Backend
from ponder.console import engine_logs_shown
from ponder.backends.engine_processes import EngineProcesses
from ponder.core.forcing import FORCING_KEY
from ponder.backends.tokenization import HuggingFaceTokenization
from ponder.core.generation import Completion, FinishReason, GenerationRequest, GenerationState
from ponder.errors import BackendDeadError, BackendError, BadRequestError, PonderError
from ponder.models.registry import resolve_model

log = logging.getLogger(__name__)


class VllmConfig(BaseModel):
    """Engine settings. ``None`` means: chosen for this machine (GPU or CPU)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("embedded", description="'embedded', a local HF folder, or a hub name.")
    dtype: str | None = Field(None, description="None: float32 on CPU, 'auto' on GPU.")
    enforce_eager: bool | None = Field(None, description="None: eager on CPU (fast start-up).")
    max_model_len: int | None = Field(2048, ge=16, description="Context length to allocate for.")
    max_num_seqs: int = Field(256, ge=1, description="Most sequences the engine runs at once.")
    enable_prefix_caching: bool = Field(True, description="Reuse KV blocks of shared prefixes.")
    block_size: int | None = Field(
        None,
        ge=16,
        description="Tokens per KV block: the prefix cache reuses whole blocks only. None: 32 on "
        "CPU (vLLM's CPU default of 128 leaves search continuations uncached until a prefix "
        "passes 128 tokens; the CPU kernels take multiples of 32), vLLM's default on GPU.",
    )
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0, description="GPU only.")
    cpu_kv_cache_gib: int = Field(
        1, ge=1, description="CPU only: KV cache size in GiB (about 46k tokens of the embedded model)."
    )
    cpu_threads: str | None = Field(
        None, description="CPU only: cores to bind, e.g. '0-7'. None: all cores, none reserved."
    )
    seed: int = Field(0, description="Engine-wide sampling seed.")
    stream_interval: int = Field(
        1,
        ge=1,
        description="Tokens between progress updates of a running sample. Finished samples "
        "are reported at once whatever this is; larger values save front-end work, but a "
        "cancelled sample's count can then miss up to this many tokens minus one.",
    )
    request_seeds: bool | None = Field(
        None,
        description="Pass per-request seeds to the engine. None: on GPU only (the CPU engine "
        "crashes on many concurrent seeded requests).",
    )
    budget_forcing: bool | None = Field(
        None,
        description="Register the budget-forcing logits processor, so budget forcing runs "
        "inside the engine. Requests that do not use it cost nothing per step. None: on CPU "
        "only: with any custom processor vLLM hands every request's output ids to the sampler, "
        "and with async scheduling (GPU) it then waits for the previous step's ids first.",
    )


_PROCESSORS = {FORCING_KEY: "ponder.backends.logits_processors:BudgetForcingProcessor"}
"""extra_args key -> the logits processor class (vLLM's module:name form) that reads it."""


def engine_processors(config: VllmConfig, on_cpu: bool) -> frozenset[str]:
    """The extra_args keys an engine with ``config`` has processors for."""
    forcing = config.budget_forcing if config.budget_forcing is not None else on_cpu
    return frozenset({FORCING_KEY} if forcing else ())


CPU_BLOCK_SIZE = 32
"""The smallest block the CPU attention kernels take: prefix reuse at 32-token granularity."""


@contextlib.contextmanager
def engine_errors(what: str, on_dead: Callable[[], None]) -> Iterator[None]:
    """Translate an ``AsyncLLM`` call's failures into ponder's: a dead engine (``on_dead``
    marks the owner closed) and a request the engine refused as invalid."""
    from vllm.exceptions import VLLMClientError
    from vllm.v1.engine.exceptions import EngineDeadError

    try:
        yield
    except EngineDeadError as exc:
        on_dead()
        raise BackendDeadError(f"the {what} engine stopped unexpectedly ({death_cause(exc)})") from exc
    except VLLMClientError as exc:
        raise BadRequestError(str(exc)) from exc


def death_cause(exc: BaseException) -> str:
    """vLLM's dead-engine error without its pointer to a stack trace in the server's log,
    which a client cannot see."""
    message = str(exc).split(" See stack trace", 1)[0].strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


SHUTDOWN_TIMEOUT_S = 15.0
"""How long the engine core may take to stop. It waits up to
``VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS`` (5 s by default) for its worker before it closes its
shared-memory queues; vLLM's own default of 5 s kills the core first, which leaks them."""
STOP_WAIT_S = 2.0
"""How long ``close`` lets the engine stop on its own. On the CPU its worker often does not
exit when told (vLLM then waits 5 s, SIGTERMs it, waits 4 s more); after this the backend ends
what is left itself and unlinks the shared memory it held."""


def shutdown_engine(engine: Any) -> None:
    """Shut an ``AsyncLLM`` down now. vLLM's finalizer calls ``shutdown()`` again, which raises
    when it runs during interpreter teardown; after this there is nothing left for it to do."""
    engine.shutdown(timeout=SHUTDOWN_TIMEOUT_S)
    engine.shutdown = lambda timeout=None: None


def engine_core_pids(engine: Any) -> list[int]:
    """The PIDs of the engine core processes an ``AsyncLLM`` spawned (none when it runs its
    core in this process, ``VLLM_ENABLE_V1_MULTIPROCESSING=0``)."""
    resources = getattr(engine.engine_core, "resources", None)
    manager = getattr(resources, "engine_manager", None)
    return [p.pid for p in getattr(manager, "processes", ()) if p.pid is not None]


def engine_on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _import_engine_modules() -> bool:
    """Import what starting an engine needs; whether the engine runs on the CPU."""
    for module in ("transformers", "vllm.engine.arg_utils", "vllm.v1.engine.async_llm"):
        importlib.import_module(module)
    return engine_on_cpu()


def end_engine_starts() -> None:
    """End every engine core this process runs, with its workers: at shutdown, so that an
    engine still starting is not waited for (a minute or more on a CPU). Its start then fails."""
    cores = [c.pid for c in multiprocessing.active_children() if c.name.startswith("EngineCore")]
    EngineProcesses(p for p in cores if p is not None).end(timeout_s=2)


def apply_cpu_environment(config: VllmConfig) -> None:
    """Set vLLM's CPU variables before the engine process is spawned (it inherits them).
    Values the user exported already win."""
    cores = config.cpu_threads or f"0-{(os.cpu_count() or 1) - 1}"
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cores)
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(config.cpu_kv_cache_gib))


class VllmBackend(HuggingFaceTokenization, Backend):
    """A ``Backend`` over an in-process ``AsyncLLM``. The engine pool holds the process's
    (``await engines.backend("embedded")``); ``await VllmBackend.start()`` starts a private one."""

    name = "vllm"

    def __init__(self, engine: Any, tokenizer: Any, config: VllmConfig, on_cpu: bool) -> None:
        super().__init__()
        self.engine = engine
        self.processes = EngineProcesses(engine_core_pids(engine))
        """The engine core and its workers, ended on close if vLLM left any behind."""
        self.tokenizer = tokenizer
        self.config = config
        self.model = config.model
        self.on_cpu = on_cpu
        self._request_ids = itertools.count()
        self._closed = False
        self.honours_request_seeds = (
            config.request_seeds if config.request_seeds is not None else not on_cpu
        )
        self.engine_processors = engine_processors(config, on_cpu)
        """The ``SamplingParams.extra_args`` keys this engine's logits processors read."""

    # -- construction ---------------------------------------------------------------------
    @classmethod
    async def start(cls, config: VllmConfig | None = None, **overrides: Any) -> VllmBackend:
        """Start a new engine. Must run inside the event loop that will use it."""
        config = (config or VllmConfig()).model_copy(update=overrides)
        config = VllmConfig.model_validate(config.model_dump())
        # Imports and a model's first preparation take seconds: off the loop, which keeps serving
        model = await asyncio.to_thread(resolve_model, config.model)
        on_cpu = await asyncio.to_thread(_import_engine_modules)
        if on_cpu:
            apply_cpu_environment(config)
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(
            model=model,
            dtype=config.dtype or ("float32" if on_cpu else "auto"),
            enforce_eager=config.enforce_eager if config.enforce_eager is not None else on_cpu,
            max_model_len=config.max_model_len,
            max_num_seqs=config.max_num_seqs,
            enable_prefix_caching=config.enable_prefix_caching,
            block_size=config.block_size or (CPU_BLOCK_SIZE if on_cpu else None),
            gpu_memory_utilization=config.gpu_memory_utilization,
            seed=config.seed,
            disable_log_stats=True,
            use_tqdm_on_load=engine_logs_shown(),  # its checkpoint bars only with -v
            logits_processors=[_PROCESSORS[k] for k in sorted(engine_processors(config, on_cpu))],
        )
        log.info("starting vLLM engine for %s (%s)", config.model, "CPU" if on_cpu else "GPU")
        try:  # in a thread: the start takes minutes on a CPU, and the loop keeps serving
            tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, model)
            engine = await asyncio.to_thread(AsyncLLM.from_engine_args, args)
        except BadRequestError:
            raise
        except Exception as exc:  # engine start-up failures surface as assorted types
            raise BackendDeadError(f"could not start vLLM for model {config.model!r}: {exc}") from exc
        return cls(engine, tokenizer, config, on_cpu)

    # -- generation ---------------------------------------------------------------------------
    def _sampling_params(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        p = request.params
        return SamplingParams(
            n=p.n,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
            stop=list(p.stop) or None,
            stop_token_ids=list(p.stop_token_ids) or None,
            include_stop_str_in_output=p.include_stop_str_in_output,
            logprobs=p.logprobs,
            seed=p.seed if self.honours_request_seeds else None,
            extra_args=dict(p.extra_args) if p.extra_args else None,
            output_kind=RequestOutputKind.DELTA,
            stream_interval=self.config.stream_interval,
        )

    def _check_fits(self, request: GenerationRequest) -> None:
        limit = self.engine.model_config.max_model_len
        prompt = len(request.prompt_token_ids)
        if prompt >= limit:
            raise BadRequestError(
                f"prompt is {prompt} tokens; the model's context (max_model_len) is {limit}"
            )

    def _check_processors(self, request: GenerationRequest) -> None:
        unknown = sorted(set(request.params.extra_args or ()) - self.engine_processors)
        if unknown:
            raise BadRequestError(
                f"extra_args names {unknown}, which no logits processor of this engine reads "
                f"(it runs {sorted(self.engine_processors)}); for budget forcing start the "
                f"engine with VllmConfig(budget_forcing=True)"
            )

    async def _stream(
        self, request: GenerationRequest, state: GenerationState
    ) -> AsyncIterator[None]:
        from vllm.inputs import TokensPrompt

        if self._closed:
            raise BackendDeadError("this vLLM backend was closed")
        self._check_fits(request)
        self._check_processors(request)
        request_id = f"ponder-{next(self._request_ids)}"
        prompt = TokensPrompt(prompt_token_ids=list(request.prompt_token_ids))
        want_logprobs = request.params.logprobs is not None
        outputs = self.engine.generate(prompt, self._sampling_params(request), request_id)
        try:
            with engine_errors("vLLM", self._mark_closed):
                async for output in outputs:
                    if output.num_cached_tokens is not None:
                        state.cached_prompt_tokens = output.num_cached_tokens
                    for delta in output.outputs:
                        _merge_delta(state.completions[delta.index], delta, want_logprobs)
                    yield
        except (asyncio.CancelledError, GeneratorExit, PonderError):
            raise
        except Exception as exc:
            raise BackendError(f"vLLM request {request_id} failed: {exc!r}") from exc
        finally:
            await outputs.aclose()  # aborts the engine request if it is still running

    def _mark_closed(self) -> None:
        self._closed = True

    @property
    def alive(self) -> bool:
        return not self._closed and not self.engine.errored

    async def close(self) -> None:
        """Shut the engine down (also one that died) and end any of its processes vLLM left
        behind (a killed core's orphaned worker). Idempotent. In a thread: it takes seconds."""
        self._closed = True
        self.processes.note_descendants()
        handler = getattr(self.engine, "output_handler", None)
        if handler is not None:  # else it reports the core's end below as an engine death
            handler.cancel()
        stopping = asyncio.ensure_future(asyncio.to_thread(shutdown_engine, self.engine))
        try:
            await asyncio.wait_for(asyncio.shield(stopping), STOP_WAIT_S)
        except TimeoutError:  # its worker is stuck: vLLM would wait 9 s more, then kill it
            await asyncio.to_thread(self.processes.end, 1.0)
            await stopping
        await asyncio.to_thread(self.processes.end)


_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "aborted"}


def _merge_delta(completion: Completion, delta: Any, want_logprobs: bool) -> None:
    """Append one streamed delta of a sample to its completion."""
    completion.token_ids.extend(delta.token_ids)
    completion.text += delta.text
    if want_logprobs and delta.logprobs is not None:
        if completion.logprobs is None:
            completion.logprobs, completion.top_logprobs = [], []
        for token_id, position in zip(delta.token_ids, delta.logprobs, strict=False):
            completion.logprobs.append(position[token_id].logprob)
            completion.top_logprobs.append({tid: lp.logprob for tid, lp in position.items()})
    if delta.finish_reason is not None:
        completion.finish_reason = _FINISH_REASONS.get(delta.finish_reason, "stop")
        completion.stop_reason = delta.stop_reason
