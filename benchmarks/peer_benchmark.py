"""ponder side by side with its_hub and the raw engine, in one run, on the same problems.

One vLLM OpenAI-compatible server (loopback, the embedded model, ponder's CPU settings) is
shared by three tools, then stopped, and ponder runs again on its in-process engine:

- engine (server), engine (in-process): the ceiling, one request with n=N per problem, no
  ponder code on the path (tokens per second);
- its_hub (server): its self-consistency, best-of-N, beam search and particle filtering,
  in its own environment (``make peers``), scored by ponder's verifiers through adapters;
- ponder (server): the same four strategies through ponder's OpenAI backend;
- ponder (in-process): the same four on ponder's vLLM backend.

Every tool gets the same problems (the offline arithmetic set), sampling settings, N,
steps and token limits (``peer_settings``), runs all problems at once, and is graded by
ponder's reference grader (math-verify) on the answer ponder's extractor finds in the
selected response. Tokens, requests and the prefix-cache hit rate of server rows are the
server's own counters before and after the row (judge requests included); in-process rows
report ponder's usage. A peer that is missing or fails gets a failed row with the reason.

Writes report.md, report.json and accuracy_vs_wall.png into --out (and prints the table).

    python benchmarks/peer_benchmark.py --size smoke            # 1 problem, N=2: minutes
    python benchmarks/peer_benchmark.py --size full [--ns 4,8]  # 16 problems, N=4,8,16
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import openai
import peer_report
import peer_settings
from peer_report import Row
from peer_server import Counters, Server, counters, vllm_server
from peer_settings import Settings
from self_consistency_ceiling import ceiling_round

from ponder.api import asolve
from ponder.backends.base import Backend
from ponder.backends.openai_backend import OpenAIBackend
from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.problem import Problem
from ponder.models.embedded import prepare_embedded_model
from ponder.strategies import SelfConsistency
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT
from ponder.verifiers.answers import AnswerExtractor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
RUNNER = HERE / "peer_its_hub.py"
RUNNER_TIMEOUT_S = 3600
ERROR_CHARS = 400


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one tool did on all problems: its answers and the wall time of the run."""

    answers: list[str | None]
    wall_s: float
    generated_tokens: int | None = None
    requests: int | None = None
    prefix_cache_hit_rate: float | None = None


def expected_rows(settings: Settings) -> list[tuple[str, str, int]]:
    """(tool, strategy, N) of every row a run of ``settings`` reports, in report order."""
    rows = [
        (tool, "self_consistency", n) for tool in peer_report.CEILING_TOOLS for n in settings.ns
    ]
    tools = [t for t in peer_report.TOOLS if t not in peer_report.CEILING_TOOLS]
    rows += [(tool, s, n) for s in settings.strategies for n in settings.ns for tool in tools]
    order = {key: index for index, key in enumerate(rows)}
    return sorted(rows, key=lambda key: (peer_report.TOOLS.index(key[0]), order[key]))


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= ERROR_CHARS else "..." + text[-ERROR_CHARS:]


async def measure(
    key: tuple[str, str, int],
    problems: list[Problem],
    run: Callable[[], Awaitable[Outcome]],
    server: Server | None = None,
) -> Row:
    """One row: ``run`` graded; on a server its counters say what the row cost. Any failure
    becomes a failed row naming the error."""
    try:
        before = counters(server) if server else Counters()
        outcome = await run()
        spent = counters(server) - before if server else None
    except Exception as exc:  # noqa: BLE001 - a failing tool is a result, not the end
        traceback.print_exc()
        return peer_report.failed(*key, _reason(exc))
    row = Row(*key, problems=len(problems), wall_s=outcome.wall_s)
    if key[0] not in peer_report.CEILING_TOOLS:
        row.correct = peer_report.count_correct(outcome.answers, problems)
    if spent is not None:
        row.generated_tokens, row.requests = int(spent.generated_tokens), int(spent.requests)
        row.prefix_cache_hit_rate = (
            spent.cached_prompt_tokens / spent.prompt_tokens if spent.prompt_tokens else None
        )
    else:
        row.generated_tokens, row.requests = outcome.generated_tokens, outcome.requests
        row.prefix_cache_hit_rate = outcome.prefix_cache_hit_rate
    print(" | ".join(peer_report.cells(row)), flush=True)
    return row


async def run_ponder(
    strategy_name: str, n: int, settings: Settings, problems: list[Problem], backend: Backend
) -> Outcome:
    strategy = peer_settings.ponder_strategy(strategy_name, n, settings)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            asolve(p, strategy=strategy, backend=backend, seed=settings.seed + i)
            for i, p in enumerate(problems)
        )
    )
    wall = time.perf_counter() - started
    prompt = sum(r.usage.prompt_tokens for r in results)
    return Outcome(
        [r.answer for r in results],
        wall,
        sum(r.usage.generated_tokens for r in results),
        prefix_cache_hit_rate=sum(r.usage.cached_prompt_tokens for r in results) / prompt
        if prompt
        else None,
    )


async def run_its_hub(
    strategy_name: str,
    n: int,
    settings: Settings,
    problems: list[Problem],
    server: Server,
    python: Path,
) -> Outcome:
    """its_hub in its own environment: the runner's reported wall time (the algorithm runs
    only, not its interpreter start), answers extracted by ponder's extractor."""
    if not python.exists():
        raise FileNotFoundError(f"its_hub is not installed: no {python} (run `make peers`)")
    job = {
        "url": server.url,
        "model": server.model,
        "tokenizer": str(server.folder),
        "strategy": strategy_name,
        "n": n,
        "settings": settings.to_dict(),
        "problems": [
            p.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for p in problems
        ],
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [str(python), str(RUNNER)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=RUNNER_TIMEOUT_S,
        cwd=HERE,
    )
    lines = done.stdout.strip().splitlines()
    report = (
        json.loads(lines[-1]) if lines else {"error": f"no report; stderr: {done.stderr[-300:]}"}
    )
    if done.returncode != 0 or "error" in report:
        raise RuntimeError(f"its_hub runner exited {done.returncode}: {report.get('error')}")
    extractor = AnswerExtractor()
    return Outcome([extractor.extract(text) for text in report["responses"]], report["seconds"])


async def server_ceiling(
    n: int, settings: Settings, problems: list[Problem], server: Server, render: Backend
) -> Outcome:
    """The server's ceiling: one completions request with n=N per problem, all at once,
    through the plain openai client, no streaming."""
    prompts = [render.render(p, DEFAULT_SYSTEM_PROMPT) for p in problems]
    async with openai.AsyncOpenAI(base_url=server.url, api_key="EMPTY", timeout=3600) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client.completions.create(
                    model=server.model,
                    prompt=ids,
                    n=n,
                    temperature=settings.temperature,
                    top_p=1.0,
                    max_tokens=settings.max_tokens,
                )
                for ids in prompts
            )
        )
        return Outcome([None] * len(problems), time.perf_counter() - started)


async def engine_ceiling(
    n: int, settings: Settings, problems: list[Problem], engine: VllmBackend
) -> Outcome:
    """The in-process ceiling: ``self_consistency_ceiling``'s raw ``AsyncLLM`` round."""
    tokens, seconds = await ceiling_round(
        engine, SelfConsistency(n=n, sampling=peer_settings.sampling(settings)), problems
    )
    return Outcome([None] * len(problems), seconds, tokens, requests=len(problems))


async def server_phase(
    settings: Settings, problems: list[Problem], out: Path, peers_python: Path
) -> list[Row]:
    rows = []
    with vllm_server(prepare_embedded_model(), out / "server.log") as server:
        backend = OpenAIBackend(  # no seeds: vLLM on CPU crashes under many seeded requests
            base_url=server.url, model=server.model, tokenizer=str(server.folder),
            request_seeds=False,
        )
        await server_ceiling(
            2, settings, problems[:1], server, backend
        )  # warm-up: first-call costs
        for n in settings.ns:
            key = ("engine (server)", "self_consistency", n)
            rows.append(
                await measure(
                    key,
                    problems,
                    lambda n=n: server_ceiling(n, settings, problems, server, backend),
                    server,
                )
            )
        for strategy in settings.strategies:
            for n in settings.ns:
                rows.append(
                    await measure(
                        ("its_hub (server)", strategy, n),
                        problems,
                        lambda s=strategy, n=n: run_its_hub(
                            s, n, settings, problems, server, peers_python
                        ),
                        server,
                    )
                )
                rows.append(
                    await measure(
                        ("ponder (server)", strategy, n),
                        problems,
                        lambda s=strategy, n=n: run_ponder(s, n, settings, problems, backend),
                        server,
                    )
                )
        await backend.close()
    return rows


async def engine_phase(
    settings: Settings, problems: list[Problem], engine: VllmBackend
) -> list[Row]:
    await engine_ceiling(2, settings, problems[:1], engine)  # warm-up: first-call costs
    rows = []
    for n in settings.ns:
        key = ("engine (in-process)", "self_consistency", n)
        rows.append(
            await measure(key, problems, lambda n=n: engine_ceiling(n, settings, problems, engine))
        )
    for strategy in settings.strategies:
        for n in settings.ns:
            key = ("ponder (in-process)", strategy, n)
            rows.append(
                await measure(
                    key,
                    problems,
                    lambda s=strategy, n=n: run_ponder(s, n, settings, problems, engine),
                )
            )
    return rows


async def benchmark(
    settings: Settings,
    out: Path,
    *,
    peers_python: Path = PEERS_PYTHON,
    engine: VllmBackend | None = None,
) -> list[Row]:
    """Run every row and write the report into ``out``. The server phase runs first and
    its server is stopped before an in-process engine is started (``engine``, when given,
    is used instead of starting one)."""
    problems = peer_settings.problems(settings)
    out.mkdir(parents=True, exist_ok=True)
    rows = await server_phase(settings, problems, out, peers_python)
    own = engine is None
    engine = engine or await engines.backend("embedded")
    try:
        rows += await engine_phase(settings, problems, engine)
    finally:
        if own:
            await engine.close()
    order = {key: i for i, key in enumerate(expected_rows(settings))}
    rows.sort(key=lambda r: order[(r.tool, r.strategy, r.n)])
    heading = f"Peer benchmark: {settings.problems} arithmetic problems (difficulty {settings.difficulty}), N={','.join(map(str, settings.ns))}"
    print("\n" + peer_report.write(rows, out, heading, settings.to_dict()))
    return rows


def settings_from(args: argparse.Namespace) -> Settings:
    settings = peer_settings.SIZES[args.size]
    changes: dict[str, object] = {}
    if args.ns:
        changes["ns"] = tuple(int(n) for n in args.ns.split(","))
    if args.problems:
        changes["problems"] = args.problems
    if args.strategies:
        changes["strategies"] = tuple(args.strategies.split(","))
    unknown = set(changes.get("strategies", ())) - set(peer_settings.STRATEGIES)
    if unknown:
        raise SystemExit(
            f"--strategies: unknown {sorted(unknown)}; known: {', '.join(peer_settings.STRATEGIES)}"
        )
    return dataclasses.replace(settings, **changes)


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(peer_settings.SIZES), default="full")
    parser.add_argument("--ns", help="comma-separated N values, overriding the size's")
    parser.add_argument("--problems", type=int, help="how many problems, overriding the size's")
    parser.add_argument(
        "--strategies", help=f"comma-separated subset of {','.join(peer_settings.STRATEGIES)}"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "peers")
    parser.add_argument(
        "--peers-python", type=Path, default=PEERS_PYTHON, help="its_hub's environment's python"
    )
    args = parser.parse_args()
    asyncio.run(benchmark(settings_from(args), args.out, peers_python=args.peers_python))
