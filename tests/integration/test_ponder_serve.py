"""``ponder serve`` as a real process on loopback with the embedded model, driven by the
official ``openai`` client: a completion, a stream, budgets, a disconnect, auth, concurrent
requests with different strategies, bad input, graceful shutdown. One server for the whole
module."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from loopback import free_port, get, serving

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = "test-key"
START_TIMEOUT_S = 300
QUESTION = "What is 6 times 2?"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``ponder serve`` on a free loopback port; yields its root URL and its process."""
    port = free_port()
    command = [sys.executable, "-m", "ponder.cli", "serve", "backend=embedded", "--host", "127.0.0.1",
               "--port", str(port), "--api-key", KEY, "--grace-s", "5"]
    root = f"http://127.0.0.1:{port}"
    with serving(command, f"{root}/health", timeout_s=START_TIMEOUT_S) as process:
        yield root, process


@pytest.fixture
def base_url(server: tuple[str, subprocess.Popen[bytes]]) -> str:
    return server[0]


def _client(base_url: str, key: str = KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=300)


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def test_the_openai_client_gets_a_completion(base_url: str) -> None:
    async with _client(base_url) as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["ponder"]
        completion = await client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"strategy": {"name": "self_consistency", "n": 4}, "trace": True},
        )
    message = completion.choices[0].message
    assert message.content  # the answer section
    assert isinstance(message.model_extra.get("reasoning_content"), str)
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens_details.reasoning_tokens <= usage.completion_tokens
    trace = completion.model_extra["ponder"]["trace"]
    assert len(trace["candidates"]) == 4
    assert usage.completion_tokens == sum(c["tokens"] for c in trace["candidates"])


async def test_a_stream_reports_progress_then_the_answer(base_url: str) -> None:
    async with _client(base_url) as client:
        stream = await client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": QUESTION}], stream=True,
            extra_body={"strategy": {"name": "self_consistency", "n": 3}},
        )
        chunks = [chunk async for chunk in stream]
    progress = [c.model_extra["ponder"] for c in chunks if not c.choices and c.model_extra.get("ponder")]
    assert len([p for p in progress if p["event"] == "sample_finished"]) == 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage.completion_tokens > 0


async def test_a_budget_caps_usage(base_url: str) -> None:
    async with _client(base_url) as client:
        completion = await client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"strategy": {"name": "self_consistency", "n": 8}, "budget": {"generated_tokens": 200}},
        )
    usage = completion.usage
    assert usage.completion_tokens <= 200
    assert usage.model_extra["ponder"]["budget_exhausted"] is True
    assert usage.model_extra["ponder"]["exhausted_by"] == "generated_tokens"


async def test_a_disconnect_cancels_the_work_in_the_engine(base_url: str) -> None:
    body = {"model": "ponder", "stream": True,
            "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "strategy": {"name": "self_consistency", "n": 4, "sampling": {"max_tokens": 1800}}}
    before = (await asyncio.to_thread(get, f"{base_url}/metrics")) or ""
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.stream("POST", f"{base_url}/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            async for _ in response.aiter_lines():
                break  # the first keep-alive: the work is under way; hang up
    deadline = time.monotonic() + 20
    while True:
        metrics = (await asyncio.to_thread(get, f"{base_url}/metrics")) or ""
        if _metric(metrics, "ponder_requests_in_flight") == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert _metric(metrics, "ponder_requests_in_flight") == 0
    assert _metric(metrics, "ponder_cancelled_requests_total") >= 1
    cancelled = _metric(metrics, 'ponder_engine_tokens{kind="cancelled"}')
    assert cancelled > _metric(before, 'ponder_engine_tokens{kind="cancelled"}')
    generated = _metric(metrics, 'ponder_engine_tokens{kind="generated"}')
    await asyncio.sleep(1.5)
    later = (await asyncio.to_thread(get, f"{base_url}/metrics")) or ""
    assert _metric(later, 'ponder_engine_tokens{kind="generated"}') == generated  # the engine stopped
    assert generated - _metric(before, 'ponder_engine_tokens{kind="generated"}') < 4 * 1800


async def test_a_bad_key_is_refused(base_url: str) -> None:
    async with _client(base_url, key="wrong") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(
                model="ponder", messages=[{"role": "user", "content": QUESTION}])


async def test_concurrent_requests_with_different_strategies_get_their_own_results(base_url: str) -> None:
    strategies = [{"name": "self_consistency", "n": 2}, {"name": "best_of_n", "n": 3},
                  {"name": "self_consistency", "n": 5}, {"name": "short_mk", "k": 4, "m": 1}]
    async with _client(base_url) as client:
        completions = await asyncio.gather(*(
            client.chat.completions.create(
                model="ponder", messages=[{"role": "user", "content": QUESTION}],
                extra_body={"strategy": strategy, "trace": True})
            for strategy in strategies))
    for strategy, completion in zip(strategies, completions, strict=True):
        extra = completion.model_extra["ponder"]
        assert extra["strategy"] == strategy["name"]
        candidates = extra["trace"]["candidates"]
        if strategy["name"] == "short_mk":
            assert 1 <= len(candidates) <= 4
        else:
            assert len(candidates) == strategy["n"]


async def test_bad_input_is_a_400_and_the_server_keeps_serving(base_url: str) -> None:
    async with _client(base_url) as client:
        with pytest.raises(openai.BadRequestError, match="unknown strategy 'nope'"):
            await client.chat.completions.create(
                model="ponder", messages=[{"role": "user", "content": QUESTION}],
                extra_body={"strategy": "nope"})
        with pytest.raises(openai.BadRequestError, match="budget.generated_tokens"):
            await client.chat.completions.create(
                model="ponder", messages=[{"role": "user", "content": QUESTION}],
                extra_body={"budget": {"generated_tokens": -5}})
        completion = await client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": QUESTION}], reasoning_effort="low")
    assert completion.choices[0].message.content is not None


async def test_auto_chooses_from_the_shipped_profile_within_the_budget(base_url: str) -> None:
    async with _client(base_url) as client:
        completion = await client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"strategy": "auto", "budget": {"generated_tokens": 700}})
    auto = completion.model_extra["ponder"]["auto"]
    assert auto["difficulty"] in ("easy", "medium", "hard")
    assert len(auto["probe_answers"]) == 4 and auto["reason"]
    assert auto["expected_tokens"] <= auto["tokens_left"] or not auto["fits"]
    assert completion.usage.completion_tokens <= 700  # the probes and the chosen run together


async def test_sigterm_lets_a_request_in_flight_finish_then_exits(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """Last in the module: it stops the server. The request in flight is answered (it fits in
    the 5 s grace period), then the server and its engine core exit."""
    base_url, process = server
    async with _client(base_url) as client:
        in_flight = asyncio.create_task(client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"strategy": {"name": "self_consistency", "n": 2, "sampling": {"max_tokens": 32}}}))
        await asyncio.sleep(0.5)
        os.kill(process.pid, signal.SIGTERM)
        completion = await in_flight
    assert completion.usage.completion_tokens > 0
    exit_code = await asyncio.to_thread(process.wait, 60)
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    assert await asyncio.to_thread(_group_gone, process.pid, 30)  # the engine core closed too


def _group_gone(group: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False
