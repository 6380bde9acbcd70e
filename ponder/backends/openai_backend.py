"""A ``Backend`` over any OpenAI-compatible HTTP server (vLLM serve, SGLang, llama.cpp's
server, OpenAI itself) through the official ``openai`` client.

Token ids are ponder's currency: search continues a parent's ids and usage counts tokens. So
this backend always holds the model's Hugging Face tokenizer, which renders chats and turns
returned text into ids where the server sends none. Without one, token counts would be
guesses, so there is no tokenizer-less mode; ``tokenizer`` defaults to ``model`` because vLLM
serves a model under its folder or hub name unless told otherwise.

How a request goes on the wire (``mode``):

- ``completions_tokens``: the completions API with the prompt as token ids (vLLM, SGLang,
  llama.cpp). Exact: the server continues precisely the given prefix.
- ``completions_text``: the completions API with the prompt decoded to text, for servers that
  take text only. The server re-tokenizes, which can differ at the edges.
- ``chat``: the chat API, for servers without raw completions (OpenAI's chat models). A chat
  API takes whole conversations, not prefixes, so ``render_chat`` remembers the messages
  behind the ids it returns and those are sent; any other prompt (a search step continuing a
  prefix) is a ``BadRequestError`` naming the modes that can continue it.
- ``auto``: ``chat`` for api.openai.com, ``completions_tokens`` for every other server.

The completions modes ask for vLLM's ``return_token_ids`` (generated ids come back, nothing is
re-tokenized) and, with logprobs, ``return_tokens_as_token_ids`` (candidates named by id);
servers without these ignore them and ids come from the tokenizer. ``stop_token_ids`` and
``include_stop_str_in_output`` are sent only when a request uses them. Closing a stream closes
its HTTP response, which vLLM takes as an abort.

``n`` samples go as one request where the server allows it (``supports_n=None`` learns this
on the first refusal); otherwise as ``n`` concurrent requests with seeds ``seed + i``, merged
into one state, whose prompt tokens then count once per request, as the server saw them.
``request_seeds=False`` leaves seeds out of every request, for a vLLM server on CPU.

Errors: an unreachable server is ``BackendDeadError``, a 4xx ``BadRequestError`` carrying the
server's message (408 and 429 excepted: those are ``BackendError``, retry later), anything
else ``BackendError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import openai

from ponder.backends.base import Backend
from ponder.backends.tokenization import HuggingFaceTokenization
from ponder.core.generation import (
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationState,
    SamplingParams,
)
from ponder.errors import BackendDeadError, BackendError, BadRequestError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["ChunkMerger", "Mode", "OpenAIBackend", "build_request"]

Mode = Literal["auto", "completions_tokens", "completions_text", "chat"]
Prompt = list[int] | str | list[dict[str, str]]
_MODES: tuple[Mode, ...] = ("auto", "completions_tokens", "completions_text", "chat")
_REMEMBERED_CHATS = 4096
_TOKEN_ID_PREFIX = "token_id:"
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "aborted"}
_RETRYABLE_4XX = (408, 429)


class OpenAIBackend(HuggingFaceTokenization, Backend):
    """A ``Backend`` that sends each request to an OpenAI-compatible server over HTTP."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        mode: Mode = "auto",
        supports_n: bool | None = None,
        timeout: float = 600.0,
        max_retries: int = 2,
        max_concurrency: int = 64,
        request_seeds: bool = True,
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise BadRequestError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
        if timeout <= 0:
            raise BadRequestError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise BadRequestError(f"max_retries must be >= 0, got {max_retries}")
        if max_concurrency < 1:
            raise BadRequestError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.mode: Mode = _resolve_mode(mode, self.base_url)
        self.supports_n = supports_n
        """Whether the server takes ``n`` > 1 in one request; None until learned."""
        self.request_seeds = request_seeds
        """Send each request's seed. vLLM's CPU build crashes ("CPU Generator does not use
        offset") when many seeded requests run together: turn this off for such a server."""
        self.tokenizer = _load_tokenizer(tokenizer if tokenizer is not None else model)
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=openai.Timeout(timeout, connect=min(timeout, 5.0)),
            max_retries=max_retries,
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        self._chats: OrderedDict[tuple[int, ...], list[dict[str, str]]] = OrderedDict()
        self._closed = False

    # -- tokenization ---------------------------------------------------------------------
    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        ids = super().render_chat(messages)
        if self.mode == "chat":  # the chat API needs the messages back, not the ids
            key = tuple(ids)
            self._chats[key] = [dict(m) for m in messages]
            self._chats.move_to_end(key)
            if len(self._chats) > _REMEMBERED_CHATS:
                self._chats.popitem(last=False)
        return ids

    # -- generation -----------------------------------------------------------------------
    async def _stream(
        self, request: GenerationRequest, state: GenerationState
    ) -> AsyncIterator[None]:
        if self._closed:
            raise BackendDeadError(f"the backend for {self.base_url} was closed")
        if request.params.extra_args:
            raise BadRequestError(
                f"extra_args {sorted(request.params.extra_args)} are for logits processors in "
                f"an in-process engine; an OpenAI-compatible server cannot be assumed to run them"
            )
        params, prompt = request.params, self._prompt(request)
        api = self._client.chat.completions if self.mode == "chat" else self._client.completions
        create = api.create

        def kwargs(n: int, seed: int | None) -> dict[str, Any]:
            seed = seed if self.request_seeds else None
            return build_request(params, model=self.model, prompt=prompt, n=n, seed=seed)

        if params.n == 1 or self.supports_n is not False:
            merger = ChunkMerger(state, self.encode)
            try:
                async with self._response(create, kwargs(params.n, params.seed)) as chunks:
                    merger.accepted()
                    if params.n > 1:
                        self.supports_n = True
                    async for chunk in chunks:
                        merger.add(chunk.to_dict())
                        yield
                return
            except BadRequestError:
                if params.n == 1 or self.supports_n is not None:
                    raise
                # The server may refuse n > 1: try one request per sample below.
        fan_out = self._fan_out(create, kwargs, state, learn=self.supports_n is None)
        async with contextlib.aclosing(fan_out):  # closing this stream must reach the requests
            async for _ in fan_out:
                yield

    async def _fan_out(
        self,
        create: Callable[..., Awaitable[Any]],
        kwargs: Callable[[int, int | None], dict[str, Any]],
        state: GenerationState,
        learn: bool,
    ) -> AsyncIterator[None]:
        """Send the ``n`` samples as ``n`` concurrent requests and merge them as they stream."""
        n, seed = state.request.params.n, state.request.params.seed
        merger = ChunkMerger(state, self.encode, requests=n)
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

        async def pump(index: int) -> None:
            child_seed = None if seed is None else seed + index
            try:
                async with self._response(create, kwargs(1, child_seed)) as chunks:
                    merger.accepted(index)
                    if learn:
                        self.supports_n = False
                    async for chunk in chunks:
                        queue.put_nowait((index, chunk.to_dict()))
            except Exception as exc:  # handed to the consumer, which raises it
                queue.put_nowait((index, exc))
            else:
                queue.put_nowait((index, None))

        tasks = [asyncio.create_task(pump(i)) for i in range(n)]
        try:
            running = n
            while running:
                index, item = await queue.get()
                if item is None:
                    running -= 1
                    continue
                if isinstance(item, Exception):
                    raise item
                merger.add(item, request=index)
                yield
        finally:
            for task in tasks:
                task.cancel()  # closes each HTTP response, so the server aborts
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _response(
        self, create: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]
    ) -> AsyncIterator[openai.AsyncStream[Any]]:
        """One streamed HTTP request holding a concurrency slot, closed however it ends,
        with the client's errors turned into ponder's."""
        async with self._slots:
            try:
                stream = await create(**kwargs)
            except openai.APIError as exc:
                raise self._error(exc) from exc
            try:
                yield stream
            except openai.APIError as exc:
                raise self._error(exc) from exc
            finally:
                await stream.close()

    def _prompt(self, request: GenerationRequest) -> Prompt:
        ids = list(request.prompt_token_ids)
        if self.mode == "completions_tokens":
            return ids
        if self.mode == "completions_text":
            return self.tokenizer.decode(ids, skip_special_tokens=False)
        messages = self._chats.get(tuple(ids))
        if messages is None:
            raise BadRequestError(
                "mode 'chat' sends whole conversations, and this prompt is not one rendered by "
                "this backend's render_chat (a continued prefix?); use mode "
                "'completions_tokens' or 'completions_text' to continue token prefixes"
            )
        return messages

    def _error(self, exc: openai.APIError) -> BackendError | BadRequestError:
        if isinstance(exc, openai.APIConnectionError):
            reason = "timed out" if isinstance(exc, openai.APITimeoutError) else _root_cause(exc)
            return BackendDeadError(
                f"no OpenAI-compatible server answers at {self.base_url}: {reason}"
            )
        if isinstance(exc, openai.APIStatusError):
            status, message = exc.status_code, _server_message(exc)
            where = f"{self.base_url} (HTTP {status})"
            if 400 <= status < 500 and status not in _RETRYABLE_4XX:
                return BadRequestError(f"{where} rejected the request: {message}")
            return BackendError(f"{where} failed the request: {message}")
        return BackendError(f"{self.base_url} failed the request: {exc.message}")

    @property
    def alive(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        """Close the HTTP client and its connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._client.close()


def build_request(
    params: SamplingParams, *, model: str, prompt: Prompt, n: int, seed: int | None
) -> dict[str, Any]:
    """Keyword arguments for ``completions.create`` (prompt as ids or text) or, when the
    prompt is a list of messages, ``chat.completions.create``."""
    chat = bool(prompt) and isinstance(prompt, list) and isinstance(prompt[0], dict)
    kwargs: dict[str, Any] = {
        "model": model,
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    extra: dict[str, Any] = {}
    if chat:
        kwargs.update(messages=prompt, max_completion_tokens=params.max_tokens)
        if params.logprobs is not None:
            kwargs.update(logprobs=True, top_logprobs=params.logprobs)
    else:
        kwargs.update(prompt=prompt, max_tokens=params.max_tokens)
        extra["return_token_ids"] = True
        if params.logprobs is not None:
            kwargs["logprobs"] = params.logprobs
            extra["return_tokens_as_token_ids"] = True
    if params.stop:
        kwargs["stop"] = list(params.stop)
    if seed is not None:
        kwargs["seed"] = seed
    if params.stop_token_ids:
        extra["stop_token_ids"] = list(params.stop_token_ids)
    if params.include_stop_str_in_output:
        extra["include_stop_str_in_output"] = True
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


@dataclass
class ChunkMerger:
    """Folds streamed chunks (completions or chat, as plain dicts) of one request, or of the
    ``requests`` single-sample requests of a fan-out, into one ``GenerationState``."""

    state: GenerationState
    encode: Callable[[str], list[int]]
    """Text to token ids: for servers that send no ids, and logprob candidates named by text."""
    requests: int = 1
    _prompt: list[int] = field(init=False)
    _cached: list[int] = field(init=False)
    _server_ids: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._prompt = [0] * self.requests
        self._cached = [0] * self.requests
        self._sum_usage()

    def accepted(self, request: int = 0) -> None:
        """The server took ``request``: count its prompt (corrected when usage arrives); a
        request refused or never delivered costs no prompt tokens."""
        self._prompt[request] = len(self.state.request.prompt_token_ids)
        self._sum_usage()

    def add(self, chunk: Mapping[str, Any], request: int = 0) -> None:
        """Merge one chunk; in a fan-out, ``request`` is the sample the chunk belongs to."""
        for choice in chunk.get("choices") or ():
            self._add_choice(self.state.completions[request + choice["index"]], choice)
        usage = chunk.get("usage")
        if usage:
            self._prompt[request] = usage.get("prompt_tokens") or self._prompt[request]
            details = usage.get("prompt_tokens_details") or {}
            self._cached[request] = details.get("cached_tokens") or 0
            self._sum_usage()

    def _sum_usage(self) -> None:
        self.state.prompt_tokens = sum(self._prompt)
        self.state.cached_prompt_tokens = sum(self._cached)

    def _add_choice(self, completion: Completion, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta")
        text = (delta.get("content") if delta is not None else choice.get("text")) or ""
        completion.text += text
        ids = choice.get("token_ids")
        if ids is not None:
            self._server_ids.add(completion.index)
            completion.token_ids.extend(ids)
        elif text and completion.index not in self._server_ids:
            completion.token_ids = self.encode(completion.text)
        if choice.get("logprobs"):
            self._add_logprobs(completion, choice["logprobs"])
        reason = choice.get("finish_reason")
        if reason:
            completion.finish_reason = _FINISH_REASONS.get(reason, "stop")
            completion.stop_reason = choice.get("stop_reason")

    def _add_logprobs(self, completion: Completion, logprobs: Mapping[str, Any]) -> None:
        if "content" in logprobs:  # chat: one entry per token, candidates as a list
            entries = logprobs["content"] or []
            sampled = [entry["logprob"] for entry in entries]
            tops = [
                {top["token"]: top["logprob"] for top in entry.get("top_logprobs") or ()}
                for entry in entries
            ]
        else:  # completions: parallel lists, candidates as a dict
            sampled = logprobs.get("token_logprobs") or []
            tops = logprobs.get("top_logprobs") or [{}] * len(sampled)
        if completion.logprobs is None or completion.top_logprobs is None:
            completion.logprobs, completion.top_logprobs = [], []
        completion.logprobs.extend(float(lp) for lp in sampled)
        completion.top_logprobs.extend(self._by_id(top or {}) for top in tops)

    def _by_id(self, top: Mapping[str, float]) -> dict[int, float]:
        by_id: dict[int, float] = {}
        for token, logprob in top.items():
            token_id = self._token_id(token)
            if token_id is not None:
                by_id.setdefault(token_id, float(logprob))
        return by_id

    def _token_id(self, token: str) -> int | None:
        """vLLM names candidates ``token_id:N`` when asked; other servers give the token's
        text, which names an id only when it encodes to exactly one token."""
        if token.startswith(_TOKEN_ID_PREFIX):
            return int(token[len(_TOKEN_ID_PREFIX):])
        ids = self.encode(token)
        return ids[0] if len(ids) == 1 else None


def _resolve_mode(mode: Mode, base_url: str) -> Mode:
    if mode != "auto":
        return mode
    host = urlparse(base_url).hostname or ""
    return "chat" if host == "openai.com" or host.endswith(".openai.com") else "completions_tokens"


def _load_tokenizer(tokenizer: Any) -> Any:
    if not isinstance(tokenizer, str):
        return tokenizer
    from ponder.models.registry import resolve_model

    try:
        location = resolve_model(tokenizer)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(location)
    except Exception as exc:  # loading fails as OSError, ValueError, BadRequestError ...
        raise BadRequestError(
            f"tokenizer: could not load a Hugging Face tokenizer from {tokenizer!r} ({exc}); "
            "the OpenAI backend needs the served model's tokenizer for token ids and token "
            "counts: pass tokenizer= a local folder or hub name"
        ) from exc


def _root_cause(exc: BaseException) -> str:
    """The reason at the bottom of the client's exception chain, e.g. 'connection refused'."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in chain):
        return "connection refused"
    root = chain[-1]
    return str(root) or type(root).__name__


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("detail")
        if message:
            return str(message)
    return exc.message
