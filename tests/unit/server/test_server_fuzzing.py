"""Schema fuzzing: schemathesis generates requests from the app's OpenAPI document, both ones
that fit it and (negative mode) ones that break it (wrong types, out-of-range numbers, missing
and extra fields, odd headers), and sends them in-process. No request may get a 5xx, every
refusal must be in OpenAI's error format, and the server keeps serving afterwards."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, settings
from server_helpers import answers, chat
from starlette.testclient import TestClient

from ponder.server import ServerSettings, create_app

APP = create_app(ServerSettings(caps={"generated_tokens": 4096, "model_calls": 64}), backend=answers("12"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(modes=list(schemathesis.GenerationMode))



@schema.hook("map_body")
def _served_model(context: schemathesis.HookContext, body: object) -> object:
    """Name the served model in half the bodies that name one, so fuzzing reaches the
    strategy runs too, not only the unknown-model refusal."""
    if isinstance(body, dict) and isinstance(body.get("model"), str) and len(body["model"]) % 2 == 0:
        return {**body, "model": "ponder"}
    return body


MAX_EXAMPLES = 60
STATUSES: Counter[tuple[str, int]] = Counter()
"""(operation, status) of every fuzzed request, for the report at the end."""


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_breaks_the_server(case: schemathesis.Case) -> None:
    response = case.call()
    STATUSES[(f"{case.method} {case.path}", response.status_code)] += 1
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and error["type"]


def test_the_server_still_serves_after_the_fuzzing() -> None:
    with TestClient(APP) as http:
        assert http.post("/v1/chat/completions", json=chat()).status_code == 200
    print("fuzzed requests by (operation, status):", dict(sorted(STATUSES.items())))
