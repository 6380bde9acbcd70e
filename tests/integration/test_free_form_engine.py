"""Free-form answers through the OpenAI-compatible app on the real engine, driven by the
official ``openai`` client: the chat content is the chosen text and the response says which
rule chose it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from ponder.backends.vllm_engine import VllmBackend
from ponder.server import ServerSettings, create_app
from ponder.verifiers.free_form import mbr_choice

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MESSAGES = [
    {"role": "system", "content": "You are a helpful writer. Reply in one or two sentences."},
    {"role": "user", "content": "Describe a sunny day at the beach."},
]


@pytest_asyncio.fixture(loop_scope="session")
async def client(engine: VllmBackend) -> AsyncIterator[openai.AsyncOpenAI]:
    """The app over the session's engine, in-process (no sockets), under the openai client."""
    transport = httpx.ASGITransport(app=create_app(ServerSettings(), backend=engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://ponder.test/v1", timeout=300) as http:
        yield openai.AsyncOpenAI(base_url="http://ponder.test/v1", api_key="unused", http_client=http,
                                 max_retries=0)


async def _ask(client: openai.AsyncOpenAI, **strategy: Any) -> tuple[str, dict[str, Any], Any]:
    completion = await client.chat.completions.create(
        model="ponder", messages=MESSAGES,
        extra_body={"strategy": {"name": "self_consistency", "n": 4, "answers": "free_form",
                                 "sampling": {"max_tokens": 64}, **strategy}, "trace": True},
    )
    return completion.choices[0].message.content, completion.model_extra["ponder"], completion.usage


async def test_self_consistency_answers_with_the_mbr_chosen_text(client: openai.AsyncOpenAI) -> None:
    content, extra, usage = await _ask(client)
    trace = extra["trace"]
    texts = [c["answer"] or "" for c in trace["candidates"]]
    assert len(texts) == 4
    assert extra["chosen_by"] == "mbr" == trace["details"]["chosen_by"]
    assert trace["selected_index"] == mbr_choice(texts).position
    assert content == texts[trace["selected_index"]] == extra["answer"]
    assert content.strip()
    assert len(trace["details"]["mbr_similarity"]) == 4
    assert usage.model_extra["ponder"]["model_calls"] == 1


async def test_usc_asks_the_model_once_more_and_says_how_it_chose(client: openai.AsyncOpenAI) -> None:
    content, extra, usage = await _ask(client, free_form="usc")
    trace = extra["trace"]
    assert extra["chosen_by"] in ("usc", "usc_fell_back_to_mbr")
    assert isinstance(trace["details"]["usc_reply"], str)
    if extra["chosen_by"] == "usc_fell_back_to_mbr":
        assert trace["details"]["fallback_reason"].startswith("the reply names")
    assert content == trace["candidates"][trace["selected_index"]]["answer"]
    assert usage.model_extra["ponder"]["model_calls"] == 2
