"""The OpenAI-compatible backend's pure parts: request building, chunk merging, n fan-out,
error mapping. Plain data only; the real server is in tests/integration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest

from ponder.backends.openai_backend import ChunkMerger, OpenAIBackend, build_request
from ponder.core.generation import GenerationRequest, GenerationState, SamplingParams
from ponder.errors import BackendDeadError, BackendError, BadRequestError

CLOSED_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there


class CharTokenizer:
    """One token per character, so expected ids are easy to write by hand."""

    eos_token_id = 0

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


def _backend(**overrides: Any) -> OpenAIBackend:
    options: dict[str, Any] = {"base_url": CLOSED_URL, "model": "m", "tokenizer": CharTokenizer()}
    return OpenAIBackend(**(options | overrides))


def _state(n: int = 1, prompt: tuple[int, ...] = (1, 2, 3), **params: Any) -> GenerationState:
    request = GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(n=n, **params))
    return GenerationState.start(request)


def _choice(index: int, text: str, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "text": text, **fields}]}


# -- request building -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "prompt", "expected", "absent"),
    [
        pytest.param(
            SamplingParams(max_tokens=7, temperature=0.5, top_p=0.9),
            [5, 6],
            {"prompt": [5, 6], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
             "extra_body": {"return_token_ids": True}},
            ["stop", "seed", "logprobs", "messages"],
            id="token-prompt",
        ),
        pytest.param(
            SamplingParams(stop=("\n\n",), stop_token_ids=(2,), include_stop_str_in_output=True),
            "text",
            {"prompt": "text", "stop": ["\n\n"], "extra_body": {"return_token_ids": True,
             "stop_token_ids": [2], "include_stop_str_in_output": True}},
            [],
            id="stops",
        ),
        pytest.param(
            SamplingParams(logprobs=3),
            [5],
            {"logprobs": 3, "extra_body": {"return_token_ids": True,
                                           "return_tokens_as_token_ids": True}},
            [],
            id="logprobs",
        ),
        pytest.param(
            SamplingParams(max_tokens=9, logprobs=2),
            [{"role": "user", "content": "hi"}],
            {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 9,
             "logprobs": True, "top_logprobs": 2},
            ["prompt", "max_tokens", "extra_body"],
            id="chat-sends-no-vllm-fields-unasked",
        ),
    ],
)
def test_build_request(
    params: SamplingParams, prompt: Any, expected: dict[str, Any], absent: list[str]
) -> None:
    kwargs = build_request(params, model="m", prompt=prompt, n=2, seed=None)
    assert kwargs["model"] == "m" and kwargs["n"] == 2 and kwargs["stream"] is True
    assert kwargs["stream_options"] == {"include_usage": True}
    for key, value in expected.items():
        assert kwargs[key] == value, key
    for key in absent:
        assert key not in kwargs, key


def test_build_request_passes_the_seed_it_is_given() -> None:
    kwargs = build_request(SamplingParams(seed=3), model="m", prompt=[1], n=1, seed=8)
    assert kwargs["seed"] == 8


# -- chunk merging ----------------------------------------------------------------------

def test_merges_interleaved_samples_with_server_token_ids_and_usage() -> None:
    state = _state(n=2)
    merger = ChunkMerger(state, CharTokenizer().encode)
    merger.accepted()
    merger.add(_choice(0, "ab", token_ids=[10, 11], prompt_token_ids=[1, 2, 3]))
    merger.add(_choice(1, "x", token_ids=[20]))
    merger.add(_choice(0, "c", token_ids=[12], finish_reason="stop", stop_reason="\n"))
    merger.add(_choice(1, "", token_ids=[21], finish_reason="length"))
    merger.add({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5,
                                         "prompt_tokens_details": {"cached_tokens": 2}}})
    first, second = state.completions
    assert (first.text, first.token_ids, first.finish_reason, first.stop_reason) == (
        "abc", [10, 11, 12], "stop", "\n")
    assert (second.text, second.token_ids, second.finish_reason) == ("x", [20, 21], "length")
    assert (state.prompt_tokens, state.cached_prompt_tokens) == (3, 2)


def test_server_abort_and_unknown_finish_reasons() -> None:
    state = _state(n=2)
    merger = ChunkMerger(state, CharTokenizer().encode)
    merger.add(_choice(0, "a", finish_reason="abort"))
    merger.add(_choice(1, "b", finish_reason="content_filter"))
    assert [c.finish_reason for c in state.completions] == ["aborted", "stop"]


def test_without_server_ids_the_text_is_tokenized_whole() -> None:
    state = _state()
    merger = ChunkMerger(state, CharTokenizer().encode)
    merger.add(_choice(0, "he"))
    merger.add(_choice(0, "y", finish_reason="stop"))
    assert state.completions[0].token_ids == [ord("h"), ord("e"), ord("y")]


def test_chat_chunks_and_their_logprobs() -> None:
    state = _state(logprobs=1)
    merger = ChunkMerger(state, CharTokenizer().encode)
    merger.add({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    merger.add({"choices": [{"index": 0, "delta": {"content": "ok"}, "logprobs": {"content": [
        {"token": "o", "logprob": -0.1, "top_logprobs": [{"token": "o", "logprob": -0.1},
                                                         {"token": "no", "logprob": -3.0}]},
        {"token": "k", "logprob": -0.2, "top_logprobs": [{"token": "k", "logprob": -0.2}]},
    ]}}]})
    merger.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    completion = state.completions[0]
    assert completion.text == "ok" and completion.token_ids == [ord("o"), ord("k")]
    assert completion.logprobs == [-0.1, -0.2]
    # "no" is two tokens, so it names no single id and is left out
    assert completion.top_logprobs == [{ord("o"): -0.1}, {ord("k"): -0.2}]


def test_completion_logprobs_named_by_token_id() -> None:
    state = _state(logprobs=1)
    merger = ChunkMerger(state, CharTokenizer().encode)
    merger.add(_choice(0, "ab", token_ids=[7, 8], logprobs={
        "tokens": ["token_id:7", "token_id:8"],
        "token_logprobs": [-0.5, -0.25],
        "top_logprobs": [{"token_id:7": -0.5, "token_id:9": -1.0}, {"token_id:8": -0.25}],
    }))
    completion = state.completions[0]
    assert completion.logprobs == [-0.5, -0.25]
    assert completion.top_logprobs == [{7: -0.5, 9: -1.0}, {8: -0.25}]


def test_fan_out_merges_request_i_into_sample_i_and_sums_usage() -> None:
    state = _state(n=3, prompt=(1, 2, 3, 4))
    merger = ChunkMerger(state, CharTokenizer().encode, requests=3)
    for request in (2, 0, 1):
        merger.accepted(request)
        merger.add(_choice(0, str(request), token_ids=[request], finish_reason="stop"), request)
    merger.add({"choices": [], "usage": {"prompt_tokens": 4}}, request=0)
    merger.add({"choices": [], "usage": {"prompt_tokens": 4,
                                         "prompt_tokens_details": {"cached_tokens": 4}}}, 1)
    assert [c.text for c in state.completions] == ["0", "1", "2"]
    assert [c.token_ids for c in state.completions] == [[0], [1], [2]]
    assert (state.prompt_tokens, state.cached_prompt_tokens) == (12, 4)


def test_a_request_never_accepted_costs_no_prompt_tokens() -> None:
    state = _state(n=2)
    ChunkMerger(state, CharTokenizer().encode, requests=2).accepted(1)
    assert state.prompt_tokens == 3


# -- the backend around them ------------------------------------------------------------

class FakeStream:
    """Stands in for the client's ``AsyncStream``: chunks as plain dicts, records closing."""

    def __init__(self, chunks: list[dict[str, Any]], hang: bool = False) -> None:
        self.chunks, self.hang, self.closed = chunks, hang, False

    async def __aiter__(self) -> AsyncIterator[SimpleNamespace]:
        for chunk in self.chunks:
            yield SimpleNamespace(to_dict=lambda chunk=chunk: chunk)
        if self.hang:
            await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True


def _status_error(status: int, body: dict[str, Any]) -> openai.APIStatusError:
    response = httpx2.Response(status, request=httpx2.Request("POST", CLOSED_URL))
    return openai.APIStatusError(f"Error code: {status}", response=response, body=body)


def _with_fake_create(backend: OpenAIBackend, create: Any) -> None:
    backend._client = SimpleNamespace(  # type: ignore[assignment]
        completions=SimpleNamespace(create=create), close=lambda: asyncio.sleep(0)
    )


async def test_a_server_refusing_n_gets_one_request_per_sample_and_is_remembered() -> None:
    backend, calls, streams = _backend(), [], []

    async def create(**kwargs: Any) -> FakeStream:
        calls.append(kwargs)
        if kwargs["n"] > 1:
            raise _status_error(400, {"message": "only n=1 is supported"})
        streams.append(FakeStream([_choice(0, "s", token_ids=[kwargs["seed"]],
                                           finish_reason="stop")]))
        return streams[-1]

    _with_fake_create(backend, create)
    request = GenerationRequest(prompt_token_ids=(1, 2), params=SamplingParams(n=3, seed=10))
    state = await backend.generate(request)
    assert [c["n"] for c in calls] == [3, 1, 1, 1]
    assert [c.token_ids for c in state.completions] == [[10], [11], [12]]  # seeds seed + i
    assert backend.supports_n is False and all(s.closed for s in streams)
    assert backend.usage.prompt_tokens == 6 and backend.usage.generated_tokens == 3

    calls.clear()
    await backend.generate(request)
    assert [c["n"] for c in calls] == [1, 1, 1]


@pytest.mark.parametrize("supports_n", [True, False])
async def test_request_seeds_off_sends_no_seed_in_one_request_or_a_fan_out(supports_n: bool) -> None:
    backend, calls = _backend(request_seeds=False, supports_n=supports_n), []

    async def create(**kwargs: Any) -> FakeStream:
        calls.append(kwargs)
        return FakeStream([_choice(i, "s", finish_reason="stop") for i in range(kwargs["n"])])

    _with_fake_create(backend, create)
    request = GenerationRequest(prompt_token_ids=(1, 2), params=SamplingParams(n=3, seed=10))
    state = await backend.generate(request)
    assert [c["n"] for c in calls] == ([3] if supports_n else [1, 1, 1])
    assert all("seed" not in c for c in calls)
    assert all(c.text == "s" for c in state.completions)


async def test_closing_a_fan_out_early_closes_every_response() -> None:
    backend, streams = _backend(supports_n=False), []

    async def create(**kwargs: Any) -> FakeStream:
        streams.append(FakeStream([_choice(0, "t", token_ids=[1])], hang=True))
        return streams[-1]

    _with_fake_create(backend, create)
    request = GenerationRequest(prompt_token_ids=(1,), params=SamplingParams(n=2))
    stream = backend.stream(request)
    async for state in stream:
        if sum(c.num_tokens for c in state.completions) == 2:
            break
    await stream.aclose()
    assert len(streams) == 2 and all(s.closed for s in streams)
    assert [c.finish_reason for c in state.completions] == ["aborted", "aborted"]
    assert backend.usage.cancelled_tokens == 2


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [
        pytest.param(400, BadRequestError, "maximum context length", id="400-bad-request"),
        pytest.param(422, BadRequestError, "maximum context length", id="422-bad-request"),
        pytest.param(429, BackendError, "maximum context length", id="429-retry-later"),
        pytest.param(500, BackendError, "maximum context length", id="500-server"),
    ],
)
def test_status_errors_carry_the_server_message(status: int, kind: type, text: str) -> None:
    error = _backend()._error(_status_error(status, {"message": "maximum context length is 2048"}))
    assert type(error) is kind and text in str(error) and f"(HTTP {status})" in str(error)


async def test_a_closed_port_is_a_dead_backend_named_by_url_fast() -> None:
    backend = _backend(max_retries=0)
    started = time.perf_counter()
    with pytest.raises(BackendDeadError, match=r"http://127\.0\.0\.1:9/v1: connection refused"):
        await backend.generate(GenerationRequest(prompt_token_ids=(1, 2)))
    assert time.perf_counter() - started < 5
    assert backend.usage.prompt_tokens == 0  # nothing reached a server
    await backend.close()


async def test_chat_mode_refuses_a_prompt_it_did_not_render() -> None:
    backend = _backend(mode="chat")
    ids = backend.render_chat([{"role": "user", "content": "hi"}])
    assert backend.decode(ids) == "<user>hi<assistant>"
    with pytest.raises(BadRequestError, match="completions_tokens"):
        await backend.generate(GenerationRequest(prompt_token_ids=(*ids, 65)))


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        pytest.param("https://api.openai.com/v1", "chat", id="openai"),
        pytest.param("http://127.0.0.1:8000/v1", "completions_tokens", id="other"),
    ],
)
def test_auto_mode(url: str, mode: str) -> None:
    assert _backend(base_url=url).mode == mode


@pytest.mark.parametrize(
    ("option", "match"),
    [
        pytest.param({"mode": "text"}, "mode must be one of", id="mode"),
        pytest.param({"max_concurrency": 0}, "max_concurrency must be >= 1", id="concurrency"),
        pytest.param({"tokenizer": "/no/such/dir"}, "tokenizer: could not load", id="tokenizer"),
    ],
)
def test_bad_options_are_named(option: dict[str, Any], match: str) -> None:
    with pytest.raises(BadRequestError, match=match):
        _backend(**option)
