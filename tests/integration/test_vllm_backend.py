"""The in-process engine against the embedded model: prefixes, samples, stops, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.vllm_engine import VllmBackend, VllmConfig
from ponder.core.generation import GenerationRequest, SamplingParams
from ponder.errors import BadRequestError

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

LONG_CONTEXT = "Facts: " + " ".join(f"item {i} costs {i * 3} coins." for i in range(60))


def _prompt(engine: VllmBackend, question: str) -> tuple[int, ...]:
    return tuple(engine.render_chat([{"role": "user", "content": question}]))


async def test_n_samples_report_honest_usage(engine: VllmBackend) -> None:
    request = GenerationRequest(
        prompt_token_ids=_prompt(engine, "What is 2 + 3?"),
        params=SamplingParams(n=4, max_tokens=24, logprobs=0),
    )
    state = await engine.generate(request)
    assert len(state.completions) == 4
    for completion in state.completions:
        assert completion.finish_reason in ("stop", "length")
        assert 0 < completion.num_tokens <= 24
        assert completion.text == engine.decode(completion.token_ids)
        assert len(completion.logprobs) == completion.num_tokens
        assert all(lp <= 0.0 for lp in completion.logprobs)
    usage = state.usage
    assert usage.prompt_tokens == len(request.prompt_token_ids)
    assert usage.generated_tokens == sum(c.num_tokens for c in state.completions)
    assert usage.cancelled_tokens == 0


async def test_samples_share_the_prompt_through_the_prefix_cache(engine: VllmBackend) -> None:
    prompt = _prompt(engine, LONG_CONTEXT + " How much does item 7 cost?")
    assert len(prompt) > 256  # the CPU cache reuses whole 128-token blocks
    params = SamplingParams(n=8, max_tokens=8)
    await engine.generate(GenerationRequest(prompt_token_ids=prompt, params=params))
    again = await engine.generate(GenerationRequest(prompt_token_ids=prompt, params=params))
    assert again.cached_prompt_tokens >= 256


async def test_continuing_a_prefix_by_token_ids(engine: VllmBackend) -> None:
    prompt = _prompt(engine, "Count from one to ten in words.")
    first = await engine.generate(
        GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(temperature=0.0, max_tokens=6))
    )
    step = first.completions[0].token_ids
    continued = await engine.generate(
        GenerationRequest(
            prompt_token_ids=prompt + tuple(step),
            params=SamplingParams(temperature=0.0, max_tokens=6),
        )
    )
    whole = await engine.generate(
        GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(temperature=0.0, max_tokens=12))
    )
    assert step + continued.completions[0].token_ids == whole.completions[0].token_ids


async def test_stop_strings_end_a_sample(engine: VllmBackend) -> None:
    state = await engine.generate(
        GenerationRequest(
            prompt_token_ids=_prompt(engine, "List three colours, one per line."),
            params=SamplingParams(n=4, max_tokens=64, stop=("\n",)),
        )
    )
    for completion in state.completions:
        assert "\n" not in completion.text
        if completion.finish_reason == "stop" and completion.stop_reason is not None:
            assert completion.stop_reason == "\n"


async def test_cancelled_request_stops_generating(engine: VllmBackend) -> None:
    request = GenerationRequest(
        prompt_token_ids=_prompt(engine, "Write a long story about a dragon."),
        params=SamplingParams(n=4, max_tokens=1000),
    )
    before = engine.usage.cancelled_tokens
    state = await engine.generate(request, until=lambda s: sum(c.num_tokens for c in s.completions) >= 20)
    assert [c.finish_reason for c in state.completions] == ["aborted"] * 4
    assert 20 <= state.usage.cancelled_tokens < 200
    assert engine.usage.cancelled_tokens - before == state.usage.cancelled_tokens
    await asyncio.sleep(0.2)
    assert engine.engine.get_num_unfinished_requests() == 0


async def test_cancelling_the_task_aborts_in_the_engine(engine: VllmBackend) -> None:
    request = GenerationRequest(
        prompt_token_ids=_prompt(engine, "Write a long story about a castle."),
        params=SamplingParams(n=2, max_tokens=1000),
    )
    task = asyncio.create_task(engine.generate(request))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    assert engine.engine.get_num_unfinished_requests() == 0


async def test_timeout_keeps_partial_state(engine: VllmBackend) -> None:
    request = GenerationRequest(
        prompt_token_ids=_prompt(engine, "Write a long poem about the sea."),
        params=SamplingParams(n=2, max_tokens=1000),
    )
    state = await engine.generate(request, timeout=1.0)
    assert state.timed_out
    assert all(c.finish_reason == "aborted" for c in state.completions)


async def test_prompt_longer_than_the_context_is_a_bad_request(engine: VllmBackend) -> None:
    too_long = tuple([engine.encode("word")[0]] * 5000)
    with pytest.raises(BadRequestError, match="max_model_len"):
        await engine.generate(GenerationRequest(prompt_token_ids=too_long))
    # the engine still serves the next request
    state = await engine.generate(
        GenerationRequest(prompt_token_ids=_prompt(engine, "Hi"), params=SamplingParams(max_tokens=4))
    )
    assert state.completions[0].num_tokens > 0


async def test_many_seeded_requests_do_not_crash_the_cpu_engine(engine: VllmBackend) -> None:
    """vLLM's CPU sampler crashes on many concurrent seeded requests; ponder must not pass
    seeds there by default."""
    if not engine.on_cpu:
        pytest.skip("CPU engine only")
    assert engine.honours_request_seeds is False
    prompt = _prompt(engine, "Say a number.")
    requests = [
        GenerationRequest(prompt_token_ids=prompt, params=SamplingParams(n=16, max_tokens=4, seed=i))
        for i in range(40)
    ]
    states = await asyncio.gather(*(engine.generate(r) for r in requests))
    assert all(len(s.completions) == 16 and s.done for s in states)


async def test_a_missing_model_path_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="does not exist"):
        await VllmBackend.start(VllmConfig(model="/nonexistent/model"))
