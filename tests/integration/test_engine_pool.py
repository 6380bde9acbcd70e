"""The engine pool on real engines: an LLM judge on its own OpenAI-compatible backend (a vLLM
server with the embedded model on loopback), scored in 100 separate ``solve`` calls, opens one
HTTP client and loads one tokenizer; after ``ponder.shutdown()`` no engine process is left and
the client is closed.

The calls run in a process of their own (``pool_probe.py``): there ``shutdown()`` empties a
pool that no other test shares, and every child process is one ponder started."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import free_port, serving
from peer_server import SERVED_NAME, cpu_environment, server_command

from ponder.backends.vllm_engine import VllmConfig
from ponder.models.embedded import prepare_embedded_model

pytestmark = pytest.mark.integration

SOLVES = 100
START_TIMEOUT_S = 300
PROBE = Path(__file__).with_name("pool_probe.py")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Path]]:
    """A vLLM server on a free loopback port; yields (its /v1 URL, the model folder)."""
    model = prepare_embedded_model()
    port, config = free_port(), VllmConfig(max_num_seqs=8)
    command = server_command(model, port, config)
    health = f"http://127.0.0.1:{port}/health"
    with serving(command, health, timeout_s=START_TIMEOUT_S, env=cpu_environment(config)):
        yield f"http://127.0.0.1:{port}/v1", model


def test_a_judge_on_its_own_server_scored_100_times_opens_one_client_and_shutdown_closes_all(
    server: tuple[str, Path],
) -> None:
    url, model = server
    completed = subprocess.run(
        [sys.executable, str(PROBE), url, SERVED_NAME, str(model), str(SOLVES)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen = json.loads(completed.stdout.strip().splitlines()[-1])

    assert seen["scored"] == SOLVES  # the server judged every candidate
    judged = seen["after_judging"]
    assert judged["clients"] == 1
    assert [Path(name).resolve() for name in judged["tokenizer_loads"]] == [model.resolve()]
    assert seen["engine_scored"] and seen["clients"] == 1  # the engine's run reused the judge
    assert seen["pooled_before_shutdown"] == 2  # the judge's backend and the in-process engine
    assert seen["children_before_shutdown"], "the in-process engine runs in a child process"

    assert seen["children_after_shutdown"] == []
    assert seen["clients_closed"] == [True]
    assert seen["pooled_after_shutdown"] == 0
