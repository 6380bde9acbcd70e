"""A process reward model (PRM) on vLLM's pooling runner: one score per step from one forward
pass over the whole solution.

A PRM such as Qwen/Qwen2.5-Math-PRM-7B reads the chat (system prompt, the problem, then the
steps as the assistant turn, each step followed by a separator token such as ``<extra_0>``)
and classifies the token at every separator: softmax over its classes, ``positive_index``
being "this step is correct". vLLM serves this as the ``token_classify`` task with STEP
pooling: ``PoolingParams(step_tag_id=...)`` keeps only the rows at the separator token.

The prompt is assembled from token ids, one separator id inserted after each step, because
tokenizing the joined text can merge a separator with its neighbours ("\\n\\n" before a word
becomes two "\\n" tokens in SmolLM2's BPE) and the step would then have no score.

A causal LM without a PRM head (the embedded model) gets one through vLLM's online
conversion to a classifier (``convert="classify"``, ``method="no_post_processing"``): the
LM-head rows of ``classifier_tokens`` become a 2-class head, so a step's score is
P(positive token) / P(both tokens) as the next token after its separator. For the embedded
model that number says nothing about correctness; it is there so the plumbing (separator
positions, batching, budget, aggregation) runs end to end on a machine with no hub.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from pydantic import Field, model_validator

from ponder.backends.vllm_engine import (
    VllmConfig,
    apply_cpu_environment,
    engine_errors,
    engine_on_cpu,
    shutdown_engine,
)
from ponder.core.problem import Problem
from ponder.core.usage import Usage
from ponder.errors import BackendDeadError, BackendError, BadRequestError, BudgetExhaustedError
from ponder.models.registry import resolve_model
from ponder.runtime import Run
from ponder.verifiers.base import Score, verifiers
from ponder.verifiers.process import ProcessVerifier

log = logging.getLogger(__name__)

QWEN_PRM_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system turn Qwen2.5-Math-PRM was trained with."""

_STEPS_PLACEHOLDER = "\x00ponder-prm-steps\x00"
"""Stands in for the assistant turn while the chat template renders, so the steps can be
tokenized piece by piece around it."""


# -- prompt and scores (pure) --------------------------------------------------------------
def separator_token_id(tokenizer: Any, separator: str, model: str) -> int:
    """The id of ``separator``, which must be exactly one token of the model's vocabulary."""
    ids = tokenizer.encode(separator, add_special_tokens=False)
    if len(ids) != 1 or tokenizer.decode(ids) != separator:
        raise BadRequestError(
            f"step_separator {separator!r} is not one token of model {model!r} (it encodes "
            f"as {len(ids)} tokens {ids}); choose a string the PRM has a single token for"
        )
    return ids[0]


@dataclass(frozen=True)
class PrmPrompt:
    token_ids: list[int]
    step_positions: list[int]
    """Where this prompt's step separators are, one per step, in order."""


def build_prompt(
    tokenizer: Any, messages: list[dict[str, str]], steps: Sequence[str], separator_id: int
) -> PrmPrompt:
    """The chat with ``steps`` as the assistant turn, a separator token after each step."""
    turns = [*messages, {"role": "assistant", "content": _STEPS_PLACEHOLDER}]
    text = tokenizer.apply_chat_template(turns, tokenize=False)
    before, placeholders, after = text.partition(_STEPS_PLACEHOLDER)
    if not placeholders or _STEPS_PLACEHOLDER in after:
        raise BadRequestError("the PRM's chat template does not render the assistant turn as given")
    ids = tokenizer.encode(before, add_special_tokens=False)
    positions = []
    for step in steps:
        ids += tokenizer.encode(step, add_special_tokens=False)
        positions.append(len(ids))
        ids.append(separator_id)
    ids += tokenizer.encode(after, add_special_tokens=False)
    return PrmPrompt(ids, positions)


def step_rows(
    rows: Sequence[Sequence[float]], prompt: PrmPrompt, separator_id: int
) -> list[Sequence[float]] | None:
    """The pooler's rows at the prompt's step separators; None when ``rows`` fit neither shape.

    vLLM returns one row per separator token (STEP pooling, how PRMs are served) or one per
    token (ALL pooling). Separator tokens elsewhere in the prompt (say, in the problem) have
    rows too; they are skipped.
    """
    if len(rows) == len(prompt.token_ids):
        return [rows[position] for position in prompt.step_positions]
    tagged = [i for i, token in enumerate(prompt.token_ids) if token == separator_id]
    if len(rows) != len(tagged):
        return None
    row_of = {position: row for position, row in zip(tagged, rows)}
    return [row_of[position] for position in prompt.step_positions]


def step_probability(logits: Sequence[float], positive_index: int) -> float:
    """softmax(logits)[positive_index] for a head of two or more classes; the sigmoid of the
    logit for a one-logit head (a reward head, where higher means better)."""
    if len(logits) == 1:
        return 0.5 * (1.0 + math.tanh(logits[0] / 2))  # the sigmoid, without overflow
    if positive_index >= len(logits):
        raise BadRequestError(
            f"positive_index must be < {len(logits)} (the PRM's classes), got {positive_index}"
        )
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    return weights[positive_index] / sum(weights)


# -- pooling clients --------------------------------------------------------------------------
@dataclass(frozen=True)
class Pooled:
    rows: list[list[float]]
    """Class logits, one row per separator token (or per token) of the prompt."""
    prompt_tokens: int
    cached_prompt_tokens: int = 0


class PoolingClient(Protocol):
    max_model_len: int

    async def pool(self, prompts: list[list[int]], separator_id: int) -> list[Pooled]:
        """Class logits for every prompt, all submitted at once."""
        ...


@dataclass(frozen=True)
class EngineSettings:
    """What makes one PRM engine differ from another: one engine per process per settings."""

    model_path: str
    classifier_tokens: tuple[str, str] | None
    max_model_len: int
    gpu_memory_utilization: float


class PrmEngine:
    """An in-process ``AsyncLLM`` with the pooling runner, separate from the generator's."""

    _shared: dict[EngineSettings, PrmEngine] = {}
    _starting = asyncio.Lock()
    """Held while an engine starts, so concurrent first uses start one engine, not several."""

    def __init__(self, engine: Any, settings: EngineSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.max_model_len: int = engine.model_config.max_model_len
        self._request_ids = itertools.count()
        self._closed = False

    @classmethod
    async def start(cls, settings: EngineSettings) -> PrmEngine:
        from vllm.config import PoolerConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        on_cpu = engine_on_cpu()
        if on_cpu:
            apply_cpu_environment(VllmConfig(model=settings.model_path))
        tokens = settings.classifier_tokens
        args = AsyncEngineArgs(
            model=settings.model_path,
            runner="pooling",
            convert="auto" if tokens is None else "classify",
            hf_overrides=(
                None
                if tokens is None
                else {"classifier_from_token": list(tokens), "method": "no_post_processing"}
            ),
            pooler_config=PoolerConfig(tok_pooling_type="STEP"),
            dtype="float32" if on_cpu else "auto",
            enforce_eager=on_cpu,
            max_model_len=settings.max_model_len,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            disable_log_stats=True,
        )
        log.info("starting the PRM engine for %s", settings.model_path)
        try:
            engine = cls(AsyncLLM.from_engine_args(args), settings)
        except Exception as exc:  # engine start-up failures surface as assorted types
            raise BackendDeadError(f"could not start the PRM engine: {exc}") from exc
        if "token_classify" not in await engine.engine.get_supported_tasks():
            await engine.close()
            raise BadRequestError(
                f"model {settings.model_path!r} has no token classification head; set "
                "classifier_tokens to read step scores from its LM head"
            )
        return engine

    @classmethod
    async def shared(cls, settings: EngineSettings) -> PrmEngine:
        """The process's engine for these settings, started on first use."""
        async with cls._starting:
            engine = cls._shared.get(settings)
            if engine is None or engine._closed or engine.engine.errored:
                engine = cls._shared[settings] = await cls.start(settings)
        return engine

    async def pool(self, prompts: list[list[int]], separator_id: int) -> list[Pooled]:
        return list(await asyncio.gather(*(self._encode(ids, separator_id) for ids in prompts)))

    async def _encode(self, token_ids: list[int], separator_id: int) -> Pooled:
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        if self._closed:
            raise BackendDeadError("this PRM engine was closed")
        # raw logits: the softmax is taken here, the same way for the engine and a server
        params = PoolingParams(
            task="token_classify", step_tag_id=separator_id, use_activation=False
        )
        prompt = TokensPrompt(prompt_token_ids=token_ids)
        request_id = f"ponder-prm-{next(self._request_ids)}"
        final = None
        with engine_errors("PRM", self._mark_closed):
            async for final in self.engine.encode(prompt, params, request_id):
                pass
        if final is None:
            raise BackendError(f"PRM request {request_id} ended without output")
        rows = final.outputs.data.tolist()
        return Pooled(rows, len(token_ids), final.num_cached_tokens or 0)

    def _mark_closed(self) -> None:
        self._closed = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        shutdown_engine(self.engine)
        if self._shared.get(self.settings) is self:
            del self._shared[self.settings]

    @classmethod
    async def close_shared(cls) -> None:
        for engine in list(cls._shared.values()):
            await engine.close()


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

    async def pool(self, prompts: list[list[int]], separator_id: int) -> list[Pooled]:
        body = {"input": prompts, "task": "token_classify", "use_activation": False}
        url = f"{self.base_url}/pooling"
        try:
            # no read timeout: a large batch takes long; the budget's deadline cuts it instead
            timeout = httpx.Timeout(None, connect=10.0)
            async with httpx.AsyncClient(transport=self._transport, timeout=timeout) as client:
                response = await client.post(url, json=body)
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


@dataclass(frozen=True)
class PrmConnection:
    client: PoolingClient
    tokenizer: Any
    """The PRM's tokenizer: prompts are built here, as token ids."""
    separator_id: int


@functools.lru_cache(maxsize=None)
def load_tokenizer(model_path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


# -- the verifier -----------------------------------------------------------------------------
@verifiers.register("prm")
class ProcessRewardModel(ProcessVerifier):
    """Scores every step of every path with a PRM, all paths in one engine submission."""

    model: str = Field(
        "embedded",
        description="The PRM: 'embedded', a local HF folder, or a hub name. With a server, the "
        "model it serves (its tokenizer builds the prompts here).",
    )
    kind: Literal["in_process", "server"] = Field(
        "in_process",
        description="in_process: a pooling engine in this process, reused by every verifier "
        "with the same engine settings; server: a vLLM server's /pooling endpoint.",
    )
    base_url: str | None = Field(
        None, description="Server only: its root URL, e.g. http://localhost:8000 (not .../v1)."
    )
    step_separator: str = Field(
        "\n\n",
        min_length=1,
        description="Put after every step; must be one token of the PRM's vocabulary "
        "('<extra_0>' for Qwen2.5-Math-PRM).",
    )
    positive_index: int = Field(
        1, ge=0, description="The class of the PRM's head that means 'this step is correct'."
    )
    classifier_tokens: tuple[str, str] | None = Field(
        ("No", "Yes"),
        description="In-process, for a causal LM without a PRM head (the embedded model): two "
        "vocabulary entries (negative, positive) whose LM-head rows become a 2-class head. "
        "None for a model with its own PRM head.",
    )
    system_prompt: str | None = Field(
        QWEN_PRM_SYSTEM_PROMPT, description="The system turn the PRM was trained with (None: none)."
    )
    max_model_len: int = Field(
        4096,
        ge=16,
        description="Longest prompt (problem and steps) scored; longer paths get no score. "
        "In-process, also the engine's context length.",
    )
    gpu_memory_utilization: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="In-process on a GPU: this engine's share of GPU memory, beside the "
        "generator's engine (whose own share must leave room for it).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ProcessRewardModel:
        url = self.base_url
        if self.kind == "in_process" and url is not None:
            raise ValueError(f"base_url is for kind 'server', not 'in_process'; got {url!r}")
        if self.kind == "server":
            if url is None:
                raise ValueError("base_url is required when kind is 'server'")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
            if url.rstrip("/").endswith("/v1"):
                raise ValueError(f"base_url is the server root, not .../v1; got {url!r}")
        tokens = self.classifier_tokens
        if tokens is not None:
            if not all(tokens) or tokens[0] == tokens[1]:
                raise ValueError(f"classifier_tokens must be two distinct tokens, got {tokens}")
            if self.positive_index > 1:
                index = self.positive_index
                raise ValueError(f"positive_index must be 0 or 1 with two tokens, got {index}")
        return self

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            resolve_model(self.model),
            self.classifier_tokens,
            self.max_model_len,
            self.gpu_memory_utilization,
        )

    async def connect(self) -> PrmConnection:
        """The engine (started on first use) or server, after checking the separator and the
        classifier tokens against the PRM's vocabulary, so a bad one fails before any start."""
        tokenizer = load_tokenizer(resolve_model(self.model))
        separator_id = separator_token_id(tokenizer, self.step_separator, self.model)
        if self.kind == "server":
            server = PoolingServer(self.base_url or "", self.max_model_len)
            return PrmConnection(server, tokenizer, separator_id)
        vocabulary = tokenizer.get_vocab()
        for token in self.classifier_tokens or ():
            if token not in vocabulary:
                raise BadRequestError(
                    f"classifier_tokens: {token!r} is not in the vocabulary of model "
                    f"{self.model!r} (byte-level BPE spells ' Yes' as 'ĠYes')"
                )
        engine = await PrmEngine.shared(self.engine_settings())
        return PrmConnection(engine, tokenizer, separator_id)

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """The chat before the steps: the PRM's system turn and the problem's last user turn
        (a system turn meant for the generator is not what the PRM was trained on)."""
        question = problem.prompt
        if question is None:
            question = next(m.content for m in reversed(problem.messages or ()) if m.role == "user")
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": question}]

    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: Run
    ) -> list[list[float | None] | Score]:
        connection = await self.connect()
        limit, separator_id = connection.client.max_model_len, connection.separator_id
        messages = self.messages(problem)
        prompts = [build_prompt(connection.tokenizer, messages, s, separator_id) for s in paths]
        sent = [p for s, p in zip(paths, prompts) if s and len(p.token_ids) <= limit]
        try:
            pooled = iter(await self._pool_within_budget(connection, sent, ctx))
        except BudgetExhaustedError as exc:
            return [Score(None, f"not scored: {exc}")] * len(paths)
        except TimeoutError:
            return [Score(None, "not scored: the budget's time ran out")] * len(paths)
        results: list[list[float | None] | Score] = []
        for steps, prompt in zip(paths, prompts):
            if not steps:
                results.append(Score(None, "the path has no steps"))
            elif len(prompt.token_ids) > limit:
                size = len(prompt.token_ids)
                reason = f"the PRM prompt is {size} tokens; max_model_len is {limit}"
                results.append(Score(None, reason))
            else:
                results.append(self._step_scores(next(pooled), prompt, separator_id))
        return results

    async def _pool_within_budget(
        self, connection: PrmConnection, prompts: list[PrmPrompt], ctx: Run
    ) -> list[Pooled]:
        """Pool every prompt at once, charging its tokens to the ledger (the base class charges
        the verifier calls). Tokens sent are charged even when the budget's time runs out."""
        if not prompts:
            return []
        tokens = sum(len(p.token_ids) for p in prompts)
        with ctx.ledger.reserve(prompt_tokens=tokens) as reservation:
            started = time.perf_counter()
            try:
                pooled = await asyncio.wait_for(
                    connection.client.pool([p.token_ids for p in prompts], connection.separator_id),
                    ctx.ledger.seconds_left(),
                )
            except TimeoutError:
                seconds = time.perf_counter() - started
                reservation.settle(Usage(prompt_tokens=tokens, wall_seconds=seconds))
                raise
            reservation.settle(
                Usage(
                    prompt_tokens=sum(p.prompt_tokens for p in pooled),
                    cached_prompt_tokens=sum(p.cached_prompt_tokens for p in pooled),
                    wall_seconds=time.perf_counter() - started,
                )
            )
        return pooled

    def _step_scores(
        self, pooled: Pooled, prompt: PrmPrompt, separator_id: int
    ) -> list[float | None] | Score:
        rows = step_rows(pooled.rows, prompt, separator_id)
        if rows is None:
            return Score(
                None,
                f"the PRM returned {len(pooled.rows)} rows for {len(prompt.step_positions)} "
                f"steps in {len(prompt.token_ids)} tokens; its step_tag_id must be the "
                f"separator's token id {separator_id}",
            )
        return [step_probability(row, self.positive_index) for row in rows]
