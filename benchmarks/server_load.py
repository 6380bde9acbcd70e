"""The endpoint against the Python API on one engine, then a bounded load test.

Throughput: 16 concurrent clients, each one problem with self-consistency (N=8), through the
endpoint (the official ``openai`` client over loopback HTTP to ``ponder serve``'s app, served
by uvicorn in this process on the same engine), against the same 16 problems through
``asolve`` at once. After one unmeasured round of each, rounds alternate (API, endpoint,
API, endpoint ...) so drift on a shared machine hits both; the figure is generated tokens per second of wall time (sampling is random,
so tokens differ between rounds), the ratio endpoint / API (target >= 0.9).

Load: 64 clients, each sending requests back to back for a bounded time (--load-s, 60 by
default; no new request after it, in-flight ones get --drain-s to finish). Reports requests
answered, errors, lost requests (sent but never answered), p50/p99 latency, and the resident
memory of this process and its engine core at the start, the middle and the end.

    flock /tmp/ponder-engine.lock .venv/bin/python benchmarks/server_load.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time

import arithmetic
import openai
import psutil
import uvicorn

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.server import ServerSettings, create_app

SC = {"name": "self_consistency", "n": 8}
LOAD_STRATEGY = {"name": "self_consistency", "n": 1, "sampling": {"max_tokens": 48}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mib() -> float:
    """Resident memory of this process and its children (the engine core), MiB."""
    me = psutil.Process()
    return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]) / 2**20


async def api_round(backend: VllmBackend, questions: list[str]) -> tuple[int, float]:
    started = time.perf_counter()
    results = await asyncio.gather(*(asolve(q, strategy=SC, backend=backend) for q in questions))
    return sum(r.usage.generated_tokens for r in results), time.perf_counter() - started


async def endpoint_round(client: openai.AsyncOpenAI, questions: list[str]) -> tuple[int, float]:
    async def one(question: str) -> int:
        completion = await client.chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": question}], extra_body={"strategy": SC})
        return completion.usage.completion_tokens

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(q) for q in questions))
    return sum(tokens), time.perf_counter() - started


async def load(client: openai.AsyncOpenAI, clients: int, load_s: float, drain_s: float) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    deadline = time.monotonic() + load_s
    rss = {"start": _rss_mib()}

    async def one_client(index: int) -> None:
        nonlocal sent
        question = arithmetic.QUESTIONS[index % len(arithmetic.QUESTIONS)][0]
        while time.monotonic() < deadline:
            sent += 1
            started = time.perf_counter()
            try:
                await client.chat.completions.create(
                    model="ponder", messages=[{"role": "user", "content": question}],
                    extra_body={"strategy": LOAD_STRATEGY})
                latencies.append(time.perf_counter() - started)
            except openai.APIError as exc:
                errors.append(type(exc).__name__)

    async def sample_middle() -> None:
        await asyncio.sleep(load_s / 2)
        rss["middle"] = _rss_mib()

    workers = asyncio.gather(*(one_client(i) for i in range(clients)), sample_middle())
    try:
        await asyncio.wait_for(workers, timeout=load_s + drain_s)
    except TimeoutError:
        pass
    rss["end"] = _rss_mib()
    answered = len(latencies) + len(errors)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    print(f"load: {clients} concurrent clients for {load_s:.0f} s (+ up to {drain_s:.0f} s to drain)")
    print(f"  requests sent {sent}, answered {len(latencies)}, errors {len(errors)} "
          f"{sorted(set(errors)) or ''}, lost {sent - answered}")
    if latencies:
        print(f"  latency p50 {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
              f"max {latencies[-1]:.2f} s")
    print(f"  RSS (this process + engine core): start {rss['start']:.0f} MiB, "
          f"middle {rss.get('middle', float('nan')):.0f} MiB, end {rss['end']:.0f} MiB")


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    port = _free_port()
    settings = ServerSettings(per_key_concurrency=4 * args.load_clients)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, backend=backend), host="127.0.0.1",
                                           port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.1)
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none",
                                max_retries=0, timeout=600)
    questions = [arithmetic.QUESTIONS[i % len(arithmetic.QUESTIONS)][0] for i in range(args.clients)]
    try:
        await api_round(backend, questions)  # warm-up, unmeasured: prefix cache, KV blocks,
        await endpoint_round(client, questions)  # connections
        rates: dict[str, list[float]] = {"api": [], "endpoint": []}
        for round_ in range(args.rounds):
            for kind in ("api", "endpoint"):
                if kind == "api":
                    tokens, seconds = await api_round(backend, questions)
                else:
                    tokens, seconds = await endpoint_round(client, questions)
                rates[kind].append(tokens / seconds)
                print(f"round {round_} {kind:8s}: {tokens} generated tokens in {seconds:.1f} s "
                      f"= {tokens / seconds:.1f} tok/s")
        api, endpoint = (statistics.mean(rates[k]) for k in ("api", "endpoint"))
        per_round = ", ".join(f"{e / a:.2f}" for a, e in zip(rates["api"], rates["endpoint"]))
        print(f"throughput, {args.clients} concurrent clients, self-consistency N=8: "
              f"Python API {api:.1f} tok/s, endpoint {endpoint:.1f} tok/s, ratio {endpoint / api:.2f} "
              f"(per round: {per_round}; target >= 0.9)")
        if args.load_s > 0:
            await load(client, args.load_clients, args.load_s, args.drain_s)
    finally:
        await client.close()
        server.should_exit = True
        await serving
        await engines.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load-clients", type=int, default=64)
    parser.add_argument("--load-s", type=float, default=60.0)
    parser.add_argument("--drain-s", type=float, default=120.0)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    asyncio.run(main(parser.parse_args()))
