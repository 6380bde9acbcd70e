"""The pooling clients without an engine: a vLLM server's /pooling endpoint over a mock
transport (what is sent, what comes back, whose fault a failure is, closing)."""

from __future__ import annotations

import json

import httpx
import pytest

from ponder.backends.pooling import PoolingServer
from ponder.errors import BackendDeadError, BackendError, BadRequestError


async def test_the_server_gets_token_ids_for_token_classify_and_rows_come_back_in_order() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        data = [{"index": 1, "object": "pooling", "data": [[0.0, 2.0]]},
                {"index": 0, "object": "pooling", "data": [[0.0, 1.0], [1.0, 0.0]]}]
        return httpx.Response(200, json={"data": data, "usage": {"prompt_tokens": 5}})

    server = PoolingServer("http://prm:8000/", 4096, httpx.MockTransport(handler))
    pooled = await server.pool([[1, 9, 2, 9], [3, 9]], separator_id=9)
    assert str(seen[0].url) == "http://prm:8000/pooling"
    assert json.loads(seen[0].content) == {
        "input": [[1, 9, 2, 9], [3, 9]], "task": "token_classify", "use_activation": False
    }
    assert [p.rows for p in pooled] == [[[0.0, 1.0], [1.0, 0.0]], [[0.0, 2.0]]]
    assert [p.prompt_tokens for p in pooled] == [4, 2]


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(400, json={"error": {"message": "Unsupported task"}}), BadRequestError,
         "answered 400.*Unsupported task"),
        (httpx.Response(500, text="boom"), BackendError, "answered 500"),
        (httpx.Response(200, json={"data": [{"index": 0, "data": [0.1, 0.9]}]}), BackendError,
         "per-token rows"),
    ],
    ids=["refused", "server-error", "one-vector-per-prompt"],
)
async def test_server_failures_say_whose_fault(
    response: httpx.Response, error: type, message: str
) -> None:
    server = PoolingServer("http://prm:8000", 4096, httpx.MockTransport(lambda request: response))
    with pytest.raises(error, match=message):
        await server.pool([[1, 9]], separator_id=9)


async def test_an_unreachable_server_is_a_backend_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    server = PoolingServer("http://prm:8000", 4096, httpx.MockTransport(refuse))
    with pytest.raises(BackendError, match="cannot reach the PRM server"):
        await server.pool([[1]], separator_id=9)


async def test_one_http_client_serves_every_call_until_closed() -> None:
    clients: set[int] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"index": 0, "data": [[0.0, 1.0]]}]})

    server = PoolingServer("http://prm:8000", 4096, httpx.MockTransport(handler))
    for _ in range(3):
        await server.pool([[1, 9]], separator_id=9)
        clients.add(id(server._client))
    client = server._client
    assert len(clients) == 1 and server.alive
    await server.close()
    await server.close()  # idempotent
    assert client.is_closed and not server.alive
    with pytest.raises(BackendDeadError, match="was closed"):
        await server.pool([[1, 9]], separator_id=9)
