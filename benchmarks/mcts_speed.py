"""Parallel MCTS simulations through ponder against the raw engine, in one run, one engine.

MCTS runs with ``parallel`` = 1, 4 and 16 at equal simulations over the arithmetic problems,
one problem after another (so the figures show what ``parallel`` does, not what batching
across problems does). Per setting:

1. Throughput against the ceiling: generated tokens per second of wall time, over the raw
   engine's at the same number of live sequences (the mean wave's leaves x k, one
   ``AsyncLLM.generate`` request with that n, each sequence the mean step's length).
2. Wall time and accuracy against ``parallel`` = 1 (target: 16 is at least 5x faster, accuracy
   within noise).
3. Prefix cache on continuations: the share of the prompt tokens of every request continuing a
   path that the engine served from its cache (target >= 80%), next to the most any cache of
   the engine's block size could serve on those prompts (whole blocks only: 32 tokens on CPU,
   the CPU kernels' smallest, 16 on GPU), and the share of that ceiling served.

Problems: the shipped arithmetic questions, then generated ones (``arithmetic`` dataset,
difficulty 1, seed 0) up to ``--problems``.

Step scorer: ``StepShape`` (free, ``search_speed``), priors uniform, so generation dominates.

    python benchmarks/mcts_speed.py [--problems 16] [--simulations 16] [--k 4] [--max-depth 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os

import arithmetic
from search_speed import (
    Run, StepShape, cacheable_share, ceiling_round, continuation_cache_share, search_round,
)

from ponder.backends.pool import engines
from ponder.core.problem import Problem
from ponder.core.sampling import SamplingConfig
from ponder.experiments.datasets import load_problems
from ponder.search.expansion import StepConfig
from ponder.strategies import MCTS

PARALLEL = (1, 4, 16)


def mcts(args: argparse.Namespace, parallel: int) -> MCTS:
    return MCTS(
        k=args.k, simulations=args.simulations, parallel=parallel, max_depth=args.max_depth,
        prior="uniform", step=StepConfig(max_step_tokens=args.step_tokens),
        sampling=SamplingConfig(max_tokens=args.max_tokens), verifier=StepShape(),
    )


def benchmark_problems(count: int) -> list[Problem]:
    shipped = arithmetic.problems(count)
    extra = count - len(shipped)
    if extra <= 0:
        return shipped
    return shipped + load_problems({"source": "arithmetic", "size": extra, "difficulty": 1, "seed": 0})


async def main(args: argparse.Namespace) -> None:
    engine = await engines.backend("embedded")
    problems = benchmark_problems(args.problems)
    block_size = engine.engine.vllm_config.cache_config.block_size
    await ceiling_round(engine, [engine.render(problems[0])], 2, 8, SamplingConfig())  # warm-up
    print(f"{len(problems)} problems one after another, {args.simulations} simulations, "
          f"k={args.k}, max_depth={args.max_depth}, step tokens <= {args.step_tokens}, "
          f"scorer: StepShape")
    first = None
    for parallel in PARALLEL:
        strategy = mcts(args, parallel)
        runs = [await search_round(engine, strategy, [p], naive=False) for p in problems]
        merged = Run([r.results[0] for r in runs], sum(r.seconds for r in runs),
                     [r.calls[0] for r in runs])
        seconds, generated, results = merged.seconds, merged.generated, merged.results
        correct = sum(r.answer == p.reference for r, p in zip(results, problems))
        roots = [len(engine.render(p, strategy.system_prompt)) for p in problems]
        share, continuing, _ = continuation_cache_share(merged, roots)
        ceiling_share = cacheable_share(merged, roots, block_size)
        waves = [w for r in results for w in r.details["waves"]]
        live = max(1, round(sum(waves) / len(waves) * args.k))
        requests = sum(r.usage.model_calls for r in results)
        step_length = max(1, round(generated / max(1, requests * args.k)))
        ceiling_tokens, ceiling_seconds = await ceiling_round(
            engine, [engine.render(problems[0], strategy.system_prompt)], live, step_length,
            strategy.sampling,
        )
        rate, ceiling_rate = generated / seconds, ceiling_tokens / ceiling_seconds
        first = first or (seconds, correct)
        print(
            f"\nparallel={parallel}: {generated} tokens in {seconds:.1f} s = {rate:.1f} tok/s, "
            f"{requests} requests, waves of {sum(waves) / len(waves):.1f} leaves on average\n"
            f"  raw engine, {live} sequences x {step_length} tokens: {ceiling_rate:.1f} tok/s; "
            f"ponder/raw: {rate / ceiling_rate:.3f}\n"
            f"  wall time against parallel=1: {first[0] / seconds:.2f}x faster (target for 16: "
            f">= 5x); accuracy {correct}/{len(problems)} (parallel=1: {first[1]}/{len(problems)})\n"
            f"  prefix cache on continuation requests: "
            f"{share:.1%} of their prompt tokens ({continuing} "
            f"requests) (target >= 80%); at most {ceiling_share:.1%} with {block_size}-token "
            f"blocks, so {share / max(ceiling_share, 1e-9):.1%} of what a cache could serve"
        )
    await engine.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--simulations", type=int, default=16)
    parser.add_argument("--k", type=int, default=4, help="children per expansion")
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--step-tokens", type=int, default=24, help="most tokens per step")
    parser.add_argument("--max-tokens", type=int, default=96, help="most tokens per path")
    asyncio.run(main(parser.parse_args()))
