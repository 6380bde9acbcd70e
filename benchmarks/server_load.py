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
memory of this process and its engine processes at the start, the middle and the end.

Soak (--soak-minutes M, instead of the above): the app as ``ponder serve`` builds it, 64
clients for M minutes with mixed strategies, every 4th request of each client a stream it
hangs up on after the first event; the same report, where errors exclude those hang-ups and
memory should stay flat.

    flock /tmp/ponder-engine.lock .venv/bin/python benchmarks/server_load.py [--rounds 2]
    flock /tmp/ponder-engine.lock .venv/bin/python benchmarks/server_load.py --soak-minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import time

import arithmetic
import httpx
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


MIXED = [LOAD_STRATEGY, {"name": "best_of_n", "n": 2, "sampling": {"max_tokens": 48}},
         {"name": "short_mk", "k": 3, "m": 1, "sampling": {"max_tokens": 48}},
         {"name": "self_consistency", "n": 3, "sampling": {"max_tokens": 32}}]
"""The soak's strategies, one per request in turn."""
DISCONNECT_EVERY = 4
"""In the soak, every 4th request of a client streams and hangs up after its first event."""


async def load(client: openai.AsyncOpenAI, clients: int, load_s: float, drain_s: float,
               *, soak: bool = False) -> None:
    """``clients`` clients back to back for ``load_s``; in a soak, mixed strategies and some
    clients hanging up mid-stream."""
    latencies: list[float] = []
    errors: list[str] = []
    sent = disconnected = 0
    deadline = time.monotonic() + load_s
    rss = {"start": _rss_mib()}
    http = httpx.AsyncClient(base_url=str(client.base_url), timeout=600)

    async def hang_up(question: str, strategy: dict) -> None:
        body = {"model": "ponder", "messages": [{"role": "user", "content": question}],
                "strategy": strategy, "stream": True}
        async with http.stream("POST", "chat/completions", json=body) as response:
            async for _ in response.aiter_lines():
                break

    async def one_client(index: int) -> None:
        nonlocal sent, disconnected
        question = arithmetic.QUESTIONS[index % len(arithmetic.QUESTIONS)][0]
        for turn in itertools.count():
            if time.monotonic() >= deadline:
                return
            strategy = MIXED[(index + turn) % len(MIXED)] if soak else LOAD_STRATEGY
            sent += 1
            started = time.perf_counter()
            try:
                if soak and turn % DISCONNECT_EVERY == DISCONNECT_EVERY - 1:
                    await hang_up(question, strategy)
                    disconnected += 1
                    continue
                await client.chat.completions.create(
                    model="ponder", messages=[{"role": "user", "content": question}],
                    extra_body={"strategy": strategy})
                latencies.append(time.perf_counter() - started)
            except (openai.APIError, httpx.HTTPError) as exc:
                errors.append(type(exc).__name__)

    async def sample_middle() -> None:
        await asyncio.sleep(load_s / 2)
        rss["middle"] = _rss_mib()

    workers = asyncio.gather(*(one_client(i) for i in range(clients)), sample_middle())
    try:
        await asyncio.wait_for(workers, timeout=load_s + drain_s)
    except TimeoutError:
        pass
    await http.aclose()
    rss["end"] = _rss_mib()
    answered = len(latencies) + len(errors) + disconnected
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    kind = "soak" if soak else "load"
    print(f"{kind}: {clients} concurrent clients for {load_s:.0f} s (+ up to {drain_s:.0f} s to drain)"
          + (f", strategies {[m['name'] for m in MIXED]}, every {DISCONNECT_EVERY}th request "
             "hangs up mid-stream" if soak else ""))
    print(f"  requests sent {sent}, answered {len(latencies)}, disconnected on purpose {disconnected}, "
          f"errors {len(errors)} {sorted(set(errors)) or ''}, lost {sent - answered}")
    if latencies:
        print(f"  latency p50 {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
              f"max {latencies[-1]:.2f} s")
    print(f"  RSS (this process + engine core and worker): start {rss['start']:.0f} MiB, "
          f"middle {rss.get('middle', float('nan')):.0f} MiB, end {rss['end']:.0f} MiB")


async def soak(args: argparse.Namespace) -> None:
    """The endpoint as ``ponder serve`` builds it (engine from the pool, loaded in the
    background, restarted if it dies) under ``--load-clients`` clients for ``--soak-minutes``."""
    port = _free_port()
    settings = ServerSettings(per_key_concurrency=4 * args.load_clients)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, backend_spec="embedded"),
                                           host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    root = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as http:
        while not server.started or (await http.get(f"{root}/health")).status_code != 200:
            await asyncio.sleep(0.5)
    client = openai.AsyncOpenAI(base_url=f"{root}/v1", api_key="none", max_retries=0, timeout=600)
    try:
        await load(client, args.load_clients, args.soak_minutes * 60, args.drain_s, soak=True)
    finally:
        await client.close()
        server.should_exit = True
        await serving


async def main(args: argparse.Namespace) -> None:
    if args.soak_minutes > 0:
        await soak(args)
        return
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
    parser.add_argument("--soak-minutes", type=float, default=0.0,
                        help="instead of the rest: a soak of this many minutes (mixed strategies, "
                        "some clients hanging up mid-stream)")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    asyncio.run(main(parser.parse_args()))
