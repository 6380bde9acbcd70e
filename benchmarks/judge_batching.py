"""LLM judge on the embedded model: every path's prompt in one submission against one at a time.

The same judge scores the same number of paths twice: batched (one ``score`` call, which
submits every prompt at once) and sequential (one ``score`` call per path, each awaited
before the next). Each round uses fresh arithmetic in its paths, so no round reuses another's
prompts through the prefix cache. Prints both wall times and sequential / batched.

    python benchmarks/judge_batching.py [--paths 64] [--judge llm_judge|step_judge] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Verifier
from ponder.verifiers.judge import LLMJudge, StepJudge

JUDGES: dict[str, type[Verifier]] = {"llm_judge": LLMJudge, "step_judge": StepJudge}


def paths(count: int, rng: random.Random) -> tuple[Problem, list[Candidate]]:
    """A sum and ``count`` distinct three-step paths for it (distinct, so none is served from
    the judge's score cache), one of them right."""
    a, b = rng.randrange(10, 99), rng.randrange(10, 99)
    tens = a + b // 10 * 10
    texts = []
    for i in range(count):
        total = a + b + i - count // 2
        texts.append(
            f"First {a} + {b // 10 * 10} = {tens}.\n\nThen {tens} + {b % 10} = {total}."
            f"\n\nThe answer is {total}."
        )
    candidates = [
        Candidate(index=i, text=t, num_tokens=0, finish_reason="stop") for i, t in enumerate(texts)
    ]
    return Problem(prompt=f"What is {a} + {b}?"), candidates


Timing = tuple[float, int]
"""Wall seconds and prompt tokens judged."""


def context(backend: VllmBackend) -> Run:
    return Run(backend, Ledger(Budget()), random.Random(0))


async def batched(
    judge: Verifier, backend: VllmBackend, problem: Problem, todo: list[Candidate]
) -> Timing:
    ctx = context(backend)
    started = time.perf_counter()
    await judge.score(problem, todo, ctx)
    return time.perf_counter() - started, ctx.ledger.spent.prompt_tokens


async def sequential(
    judge: Verifier, backend: VllmBackend, problem: Problem, todo: list[Candidate]
) -> Timing:
    ctx = context(backend)
    started = time.perf_counter()
    for candidate in todo:
        await judge.score(problem, [candidate], ctx)
    return time.perf_counter() - started, ctx.ledger.spent.prompt_tokens


def describe(timings: list[Timing]) -> str:
    seconds = statistics.mean(t for t, _ in timings)
    tokens = statistics.mean(n for _, n in timings)
    return f"{seconds:.2f} s ({tokens:.0f} prompt tokens, {tokens / seconds:.0f} tok/s)"


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    judge = JUDGES[args.judge]()
    rng = random.Random(0)
    await batched(judge, backend, *paths(4, rng))  # warm-up: first-call costs
    one_batch: list[Timing] = []
    one_by_one: list[Timing] = []
    for round_index in range(args.rounds):
        one_by_one.append(await sequential(judge, backend, *paths(args.paths, rng)))
        one_batch.append(await batched(judge, backend, *paths(args.paths, rng)))
        print(f"round {round_index + 1}: one at a time {describe(one_by_one[-1:])}, "
              f"batched {describe(one_batch[-1:])}")
    ratio = statistics.mean(s for s, _ in one_by_one) / statistics.mean(b for b, _ in one_batch)
    print(
        f"\n{args.judge} over {args.paths} paths, {args.rounds} round(s):\n"
        f"  one at a time: {describe(one_by_one)}\n"
        f"  batched:       {describe(one_batch)}\n"
        f"  ratio one-at-a-time / batched wall time: {ratio:.2f}x"
    )
    await backend.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=64)
    parser.add_argument("--judge", choices=sorted(JUDGES), default="llm_judge")
    parser.add_argument("--rounds", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
