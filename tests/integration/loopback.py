"""Server processes on loopback for integration tests: a free port, a GET that tolerates a
server still starting, and a process group started, waited for and ended cleanly (``stop``: the
peer benchmark's, which starts its server the same way)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from peer_server import stop


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
