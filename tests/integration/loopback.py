"""Server processes on loopback for integration tests: a free port, a GET that tolerates a
server still starting, and a process group started, waited for and ended cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str | None:
    """The body of a 200 answer, or None (refused, still starting, another status)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode() if response.status == 200 else None
    except OSError:
        return None


@contextlib.contextmanager
def serving(command: Sequence[str], health_url: str, *, timeout_s: float,
            env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in its own process group until ``health_url`` answers; yield the
    process; end the whole group (server and engine core) on exit. Fails the test with the log's tail if it never
    comes up."""
    log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)
    process = subprocess.Popen(
        list(command), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while get(health_url) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = Path(log.name).read_text(errors="replace")[-3000:]
                pytest.fail(f"{command[:4]} did not come up (exit {process.poll()}):\n{tail}")
            time.sleep(1)
        yield process
    finally:
        stop(process)
        log.close()
        os.unlink(log.name)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, give it 30 s to finish, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
