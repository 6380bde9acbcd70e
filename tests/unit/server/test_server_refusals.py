"""Bad input and operator limits: OpenAI-format errors naming the field, and the server keeps
serving after each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from server_helpers import answers, chat, client

CASES: list[tuple[str, Any, int, str | None, str]] = [
    ("malformed json", b'{"model": "ponder", "messages": [', 400, "body", "not valid JSON"),
    ("unknown strategy", chat(strategy="nope"), 400, "strategy", "unknown strategy 'nope'"),
    ("strategy without name", chat(strategy={"n": 3}), 400, "strategy", "needs a 'name'"),
    ("strategy param out of range", chat(strategy={"name": "self_consistency", "n": 0}), 400,
     "strategy.n", "greater than or equal to 1"),
    ("unknown strategy param", chat(strategy={"name": "self_consistency", "m": 3}), 400,
     "strategy.m", "unknown parameter"),
    ("budget of the wrong type", chat(budget={"generated_tokens": "lots"}), 400,
     "budget.generated_tokens", "valid integer"),
    ("budget out of range", chat(budget={"latency_s": -1}), 400, "budget.latency_s", "greater than 0"),
    ("unknown budget field", chat(budget={"dollars": 3}), 400, "budget.dollars", "unknown field"),
    ("budget over the cap", chat(budget={"generated_tokens": 10**6}), 400, "budget.generated_tokens",
     "over the server's cap of 32768"),
    ("no messages", chat() | {"messages": []}, 400, "messages", "at least 1 item"),
    ("bad role", chat() | {"messages": [{"role": "robot", "content": "hi"}]}, 400,
     "messages.0.role", "Input should be"),
    ("image content", chat() | {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, 400,
     "messages.0.content", "valid string"),
    ("empty content", chat(""), 400, "messages.0.content", "messages.0.content: must not be empty"),
    ("whitespace content", chat(" \n\t "), 400, "messages.0.content",
     "messages.0.content: must not be empty or only whitespace"),
    ("blank system turn", chat() | {"messages": [{"role": "system", "content": " "},
                                                 {"role": "user", "content": "hi"}]}, 400,
     "messages.0.content", "must not be empty or only whitespace"),
    ("no content parts", chat() | {"messages": [{"role": "user", "content": []}]}, 400,
     "messages.0.content", "must not be empty or only whitespace"),
    ("blank content parts", chat() | {"messages": [{"role": "user", "content": [
        {"type": "text", "text": " "}, {"type": "text", "text": ""}]}]}, 400,
     "messages.0.content", "must not be empty or only whitespace"),
    ("no user turn", chat() | {"messages": [{"role": "system", "content": "Be brief."}]}, 400,
     "messages", "at least one user message"),
    ("unknown field", chat(temprature=0.5), 400, "temprature", "unknown field"),
    ("n above one", chat(n=4), 400, "n", "Input should be 1"),
    ("bad effort", chat(reasoning_effort="extreme"), 400, "reasoning_effort", "Input should be"),
    ("unknown model", chat() | {"model": "gpt-9"}, 404, "model", "does not exist"),
    ("over-long prompt", chat("word " * 2000), 400, "messages", "over the server's cap of 1536"),
]


@pytest.mark.parametrize(("body", "status", "param", "says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_naming_the_field(body: Any, status: int, param: str | None,
                                                     says: str) -> None:
    async with client() as http:
        if isinstance(body, bytes):
            response = await http.post("/v1/chat/completions", content=body,
                                       headers={"content-type": "application/json"})
        else:
            response = await http.post("/v1/chat/completions", json=body)
        error = response.json()["error"]
        assert response.status_code == status, error
        assert error["param"] == param
        assert says in error["message"]
        assert error["type"] in ("invalid_request_error", "not_found_error")
        assert (await http.post("/v1/chat/completions", json=chat())).status_code == 200


@pytest.mark.parametrize("prompt", ["", " ", "\n\t"], ids=["empty", "space", "newline-tab"])
async def test_a_blank_completion_prompt_is_refused_as_a_blank_chat_message_is(prompt: str) -> None:
    async with client() as http:
        response = await http.post("/v1/completions", json={"model": "ponder", "prompt": prompt})
        assert response.status_code == 400
        assert response.json()["error"] == {
            "message": "prompt: must not be empty or only whitespace",
            "type": "invalid_request_error", "param": "prompt", "code": None,
        }
        ok = await http.post("/v1/completions", json={"model": "ponder", "prompt": "What is 6 times 2?"})
        assert ok.status_code == 200


async def test_a_body_over_the_limit_is_refused_before_parsing() -> None:
    async with client(max_body_bytes=2048) as http:
        response = await http.post("/v1/chat/completions", json=chat("x" * 5000))
        assert response.status_code == 413
        assert "limit of 2048 bytes" in response.json()["error"]["message"]
        assert (await http.post("/v1/chat/completions", json=chat())).status_code == 200


@pytest.mark.parametrize(("header", "status"), [
    (None, 401), ("Bearer wrong", 401), ("Basic secret", 401), ("Bearer secret", 200),
], ids=["none", "wrong key", "wrong scheme", "right key"])
async def test_api_keys(header: str | None, status: int) -> None:
    headers = {"Authorization": header} if header else {}
    async with client(api_keys=("secret",)) as http:
        response = await http.post("/v1/chat/completions", json=chat(), headers=headers)
        assert response.status_code == status
        if status == 401:
            assert response.json()["error"]["type"] == "authentication_error"
            assert (await http.get("/v1/models", headers=headers)).status_code == 401
        assert (await http.get("/health")).status_code == 200  # probes need no key


async def test_per_key_concurrency_refuses_the_extra_request_and_frees_its_slot() -> None:
    slow = answers("12", delay=0.002)  # 24 tokens: about 50 ms a request
    async with client(slow, api_keys=("a", "b"), per_key_concurrency=1) as http:
        key_a, key_b = ({"Authorization": f"Bearer {k}"} for k in "ab")
        first = asyncio.create_task(http.post("/v1/chat/completions", json=chat(), headers=key_a))
        await asyncio.sleep(0.01)
        second = await http.post("/v1/chat/completions", json=chat(), headers=key_a)
        other_key = await http.post("/v1/chat/completions", json=chat(), headers=key_b)
        assert (await first).status_code == 200
        assert second.status_code == 429
        assert second.json()["error"]["type"] == "rate_limit_error"
        assert other_key.status_code == 200
        assert (await http.post("/v1/chat/completions", json=chat(), headers=key_a)).status_code == 200


async def test_operator_caps_fill_a_budget_the_request_leaves_out() -> None:
    async with client(answers("12"), caps={"generated_tokens": 50}) as http:
        body = (await http.post("/v1/chat/completions", json=chat())).json()
    assert body["usage"]["completion_tokens"] <= 50
    assert body["usage"]["ponder"]["exhausted_by"] == "generated_tokens"


@pytest.mark.parametrize("strategy", [
    {"_target_": "builtins.print", "_args_": ["ran"]},
    {"name": "self_consistency", "sampler": {"_target_": "ponder.strategies.ShortMK"}},
    {"name": "self_consistency", "extractor": {"methods": [{"_partial_": True}]}},
], ids=["root", "nested part", "inside a list"])
async def test_hydra_instantiation_is_refused_over_http(strategy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import hydra.utils

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request reached hydra.utils.instantiate")

    monkeypatch.setattr(hydra.utils, "instantiate", never)
    async with client() as http:
        response = await http.post("/v1/chat/completions", json=chat(strategy=strategy))
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == "instantiation_refused"
    assert error["param"].startswith("strategy.") and error["param"].endswith("_")


async def test_a_strategy_graph_is_built_validated_and_run() -> None:
    graph = {"name": "self_consistency", "n": 4, "sampler": {"name": "short_mk", "k": 4, "m": 2}}
    async with client() as http:
        ok = await http.post("/v1/chat/completions", json=chat(strategy=graph))
        wrong_kind = await http.post("/v1/chat/completions", json=chat(
            strategy={"name": "self_consistency", "sampler": {"name": "nope"}}))
    assert ok.status_code == 200, ok.text
    assert wrong_kind.status_code == 400
    assert wrong_kind.json()["error"]["param"] == "strategy.sampler"
