"""The endpoint's OpenAI shapes, ponder's extensions and its metrics, over a scripted backend."""

from __future__ import annotations

import asyncio
import json

import pytest
from server_helpers import answers, chat, client


async def test_chat_completion_splits_reasoning_from_answer_and_reports_usage() -> None:
    async with client(answers("12", "13", "12")) as http:
        response = await http.post("/v1/chat/completions", json=chat(
            strategy={"name": "self_consistency", "n": 3}, trace=True))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Answer: 12", "reasoning_content": "Let me think."}
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    # scripted tokens are characters: 3 samples of "Let me think.\nAnswer: 1x" (24 each)
    assert usage["completion_tokens"] == 3 * 24
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 3 * 14
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["ponder"]["model_calls"] == 1 and usage["ponder"]["budget_exhausted"] is False
    trace = body["ponder"]["trace"]
    assert [c["answer"] for c in trace["candidates"]] == ["12", "13", "12"]
    assert trace["details"]["votes"] == {"12": 2.0, "13": 1.0}
    assert body["ponder"]["answer"] == "12"


async def test_no_trace_unless_asked() -> None:
    async with client() as http:
        body = (await http.post("/v1/chat/completions", json=chat())).json()
    assert "trace" not in body["ponder"]


async def test_text_completion_returns_the_selected_chain() -> None:
    async with client(answers("7")) as http:
        response = await http.post("/v1/completions", json={
            "model": "ponder", "prompt": "What is 3 + 4?", "strategy": "best_of_n"})
    body = response.json()
    assert response.status_code == 200, body
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "Let me think.\nAnswer: 7"
    assert body["ponder"]["strategy"] == "best_of_n"


async def test_models_health_and_metrics() -> None:
    async with client(model_name="smol") as http:
        models = (await http.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["smol"]
        assert (await http.get("/health")).json() == {"status": "ok"}
        await http.post("/v1/chat/completions", json={**chat(), "model": "smol"})
        await http.post("/v1/chat/completions", json={**chat(), "model": "smol", "strategy": "nope"})
        metrics = (await http.get("/metrics")).text
    assert 'ponder_requests_total{route="/v1/chat/completions",status="200"} 1.0' in metrics
    assert 'ponder_requests_total{route="/v1/chat/completions",status="400"} 1.0' in metrics
    assert 'ponder_tokens_total{kind="generated"} 192.0' in metrics  # 8 chains of 24
    assert "ponder_request_latency_seconds_bucket" in metrics


@pytest.mark.parametrize(
    ("effort", "chains"), [("low", 1), ("medium", 4), ("high", 16)], ids=["low", "medium", "high"]
)
async def test_reasoning_effort_presets(effort: str, chains: int) -> None:
    async with client() as http:
        body = (await http.post("/v1/chat/completions", json=chat(reasoning_effort=effort, trace=True))).json()
    assert len(body["ponder"]["trace"]["candidates"]) == chains


async def test_openai_sampling_fields_reach_the_strategy() -> None:
    backend = answers("12")
    async with client(backend) as http:
        await http.post("/v1/chat/completions", json=chat(
            temperature=0.25, max_tokens=5, strategy={"name": "self_consistency", "n": 2}))
    params = backend.requests[0].params
    assert (params.temperature, params.max_tokens, params.n) == (0.25, 5, 2)


async def test_a_budget_caps_usage_and_says_it_ended_the_run() -> None:
    async with client(answers("12")) as http:
        body = (await http.post("/v1/chat/completions", json=chat(
            strategy={"name": "self_consistency", "n": 8}, budget={"generated_tokens": 60}))).json()
    usage = body["usage"]
    assert usage["completion_tokens"] <= 60
    assert usage["ponder"]["budget_exhausted"] is True
    assert usage["ponder"]["exhausted_by"] == "generated_tokens"


async def test_a_thinking_budget_limits_generated_tokens() -> None:
    async with client(answers("12")) as http:
        body = (await http.post("/v1/chat/completions", json=chat(
            strategy={"name": "self_consistency", "n": 8}, budget={"thinking_tokens": 50}))).json()
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] <= 50
    assert body["usage"]["completion_tokens"] <= 50


async def test_concurrent_requests_get_their_own_settings_and_results() -> None:
    async with client(answers("12", "13", delay=0.001)) as http:
        asks = [chat(strategy={"name": "self_consistency", "n": n}, trace=True) for n in (1, 2, 3, 5)]
        asks.append(chat(strategy={"name": "best_of_n", "n": 4}, trace=True))
        bodies = [r.json() for r in await asyncio.gather(
            *(http.post("/v1/chat/completions", json=ask) for ask in asks))]
    assert [len(b["ponder"]["trace"]["candidates"]) for b in bodies] == [1, 2, 3, 5, 4]
    assert [b["ponder"]["strategy"] for b in bodies] == ["self_consistency"] * 4 + ["best_of_n"]
    assert [b["usage"]["completion_tokens"] for b in bodies] == [24, 48, 72, 120, 96]


async def test_a_stream_sends_progress_then_the_answer_then_done() -> None:
    async with client(answers("12", "13", "12")) as http:
        async with http.stream("POST", "/v1/chat/completions", json=chat(
                stream=True, strategy={"name": "self_consistency", "n": 3})) as response:
            lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    progress = [c["ponder"] for c in chunks if not c["choices"]]
    assert [p["event"] for p in progress] == ["sample_finished"] * 3
    assert sorted(p["sample"] for p in progress) == [0, 1, 2]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == "Answer: 12"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me think."
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 72
    # progress comes before any of the answer
    first_answer = next(i for i, c in enumerate(chunks) if c["choices"])
    assert all(not c["choices"] for c in chunks[:first_answer]) and first_answer == 3


async def test_a_completions_stream_sends_text_pieces() -> None:
    async with client(answers("7")) as http:
        async with http.stream("POST", "/v1/completions", json={
                "model": "ponder", "prompt": "3 + 4?", "stream": True}) as response:
            lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    texts = [json.loads(line[6:])["choices"] for line in lines]
    assert "".join(c[0]["text"] for c in texts if c) == "Let me think.\nAnswer: 7"


async def test_settings_that_conflict_inside_the_strategy_are_a_400() -> None:
    async with client() as http:
        response = await http.post("/v1/chat/completions", json=chat(
            temperature=0.0, strategy={"name": "self_consistency", "n": 2}))
    assert response.status_code == 400
    assert "n must be 1 when temperature is 0" in response.json()["error"]["message"]


async def test_message_content_may_be_a_list_of_text_parts() -> None:
    backend = answers("12")
    parts = [{"type": "text", "text": "What is 6"}, {"type": "text", "text": "times 2?"}]
    async with client(backend) as http:
        response = await http.post("/v1/chat/completions", json=chat() | {
            "messages": [{"role": "user", "content": parts, "name": "ann"}]})
    assert response.status_code == 200
    assert "What is 6\ntimes 2?" in backend.decode(backend.requests[0].prompt_token_ids)
