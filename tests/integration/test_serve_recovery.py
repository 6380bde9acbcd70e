"""``ponder serve`` as a real process with the embedded model, through its life: it listens
before the engine has loaded, survives the engine core being killed mid-request (that request
503 with a clear message, /health 503 then 200, the next request answered, no orphans), and
on SIGTERM leaves no process behind, no leaked shared memory and no pending task. One server
for the module: each engine start takes about a minute here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from loopback import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

START_TIMEOUT_S = 300
GRACE_S = 5
BODY = {"model": "ponder", "messages": [{"role": "user", "content": "What is 6 times 2?"}],
        "strategy": {"name": "self_consistency", "n": 2, "sampling": {"max_tokens": 32}}}
LONG = {**BODY, "strategy": {"name": "self_consistency", "n": 4, "sampling": {"max_tokens": 1500}},
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]}


class Server:
    def __init__(self, process: subprocess.Popen[bytes], root: str, log: Path) -> None:
        self.process, self.root, self.log = process, root, log

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def engine_processes(self) -> list[psutil.Process]:
        return [p for p in psutil.Process(self.process.pid).children(recursive=True)
                if p.name().startswith("VLLM::")]

    def health(self) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.root}/health", timeout=5)
        except httpx.TransportError:
            return None

    def wait_health(self, status: str, within_s: float) -> httpx.Response:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            response = self.health()
            if response is not None and response.json()["status"] == status:
                return response
            assert self.process.poll() is None, self.stderr()[-3000:]
            time.sleep(0.5)
        pytest.fail(f"/health never said {status!r}:\n{self.stderr()[-3000:]}")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="serve-", suffix=".log")[1])
    command = [sys.executable, "-m", "ponder.cli", "serve", "backend=embedded", "--host", "127.0.0.1",
               "--port", str(port), "--grace-s", str(GRACE_S), "--restart-backoff-s", "0.5"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)
    try:
        yield Server(process, f"http://127.0.0.1:{port}", log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.unlink()


def test_it_listens_and_says_starting_before_the_engine_is_up(server: Server) -> None:
    deadline = time.monotonic() + 30
    while "listening on" not in server.stderr():
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.1)
    assert f"listening on {server.root} (engine loading)" in server.stderr()
    starting = server.health()
    assert starting is not None and starting.status_code == 503
    assert starting.json()["status"] == "starting" and int(starting.headers["Retry-After"]) > 0
    refused = httpx.post(f"{server.root}/v1/chat/completions", json=BODY, timeout=30)
    assert refused.status_code == 503 and "Retry-After" in refused.headers
    assert server.wait_health("ok", START_TIMEOUT_S).status_code == 200
    assert "ready" in server.stderr().splitlines()


def test_a_killed_engine_core_fails_its_request_clearly_and_comes_back(server: Server) -> None:
    server.wait_health("ok", START_TIMEOUT_S)
    old = server.engine_processes()
    core = next(p for p in old if p.name() == "VLLM::EngineCore")
    with httpx.Client(base_url=server.root, timeout=120) as http, ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(http.post, "/v1/chat/completions", json=LONG)
        time.sleep(3)  # the engine is generating
        core.kill()
        failed = in_flight.result()
        assert failed.status_code == 503 and "Retry-After" in failed.headers
        message = failed.json()["error"]["message"]
        assert "stopped unexpectedly (EngineDeadError" in message and "above" not in message
        assert "starting a new engine" in message
        down = server.health()
        assert down is not None and down.status_code == 503
        assert down.json()["status"] in ("unavailable", "starting")
        assert server.wait_health("ok", START_TIMEOUT_S).status_code == 200
        answered = http.post("/v1/chat/completions", json=BODY)
    assert answered.status_code == 200 and answered.json()["usage"]["completion_tokens"] > 0
    _, orphans = psutil.wait_procs(old, timeout=10)  # the old core's worker too
    assert not orphans
    assert len(server.engine_processes()) == len(old)  # one new core and its worker


def test_sigterm_leaves_nothing_behind(server: Server) -> None:
    server.wait_health("ok", START_TIMEOUT_S)
    engine = server.engine_processes()
    with httpx.Client(base_url=server.root, timeout=60) as http:
        with http.stream("POST", "/v1/chat/completions", json={**LONG, "stream": True}) as response:
            next(response.iter_lines())  # then hang up mid-stream
        time.sleep(1)
    started = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    server.process.wait(GRACE_S + 5)
    _, left = psutil.wait_procs(engine, timeout=max(0.1, GRACE_S + 5 - (time.monotonic() - started)))
    took = time.monotonic() - started
    assert not left, f"still running {took:.1f} s after SIGTERM: {left}"
    stderr = server.stderr()
    assert "leaked shared_memory" not in stderr
    assert "Task was destroyed but it is pending" not in stderr

