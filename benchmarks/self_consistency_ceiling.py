"""Self-consistency through ponder against the raw engine ceiling, in one run, one engine.

Ceiling: for each problem, one vLLM request with n=N straight to ``AsyncLLM.generate``
(no ponder code on the path, final output only, no streaming), all problems at once. ponder: ``asolve`` with
``self_consistency`` (n=N) for the same problems at once, same sampling settings. Both
figures are generated tokens per second of wall time; the ratio is what ponder keeps of the
engine's speed. Rounds alternate (ceiling, ponder, ceiling, ponder, ...) so drift on a
shared machine hits both.

    python benchmarks/self_consistency_ceiling.py [--n 16] [--problems 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import arithmetic

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.problem import Problem
from ponder.strategies import SamplingConfig, SelfConsistency


async def ceiling_round(backend: VllmBackend, strategy: SelfConsistency, problems: list[Problem]) -> tuple[int, float]:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    s = strategy.sampling
    params = SamplingParams(
        n=strategy.n, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
        output_kind=RequestOutputKind.FINAL_ONLY,  # no streaming: the engine's fastest path
    )
    prompts = [backend.render(p, strategy.system_prompt) for p in problems]

    async def one(index: int, prompt: list[int]) -> int:
        final = None
        async for final in backend.engine.generate(TokensPrompt(prompt_token_ids=prompt), params, f"ceiling-{time.time_ns()}-{index}"):
            pass
        return sum(len(o.token_ids) for o in final.outputs)

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    return sum(tokens), time.perf_counter() - started


async def ponder_round(backend: VllmBackend, strategy: SelfConsistency, problems: list[Problem]) -> tuple[int, float]:
    started = time.perf_counter()
    results = await asyncio.gather(*(asolve(p, strategy=strategy, backend=backend) for p in problems))
    elapsed = time.perf_counter() - started
    return sum(r.usage.generated_tokens for r in results), elapsed


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend({"kind": "vllm", "stream_interval": args.stream_interval})
    strategy = SelfConsistency(n=args.n, sampling=SamplingConfig(max_tokens=args.max_tokens))
    problems = arithmetic.problems(args.problems)
    await ceiling_round(backend, strategy, problems[:1])  # warm-up: first-call costs
    ceiling, ours = [], []
    for round_index in range(args.rounds):
        tokens, seconds = await ceiling_round(backend, strategy, problems)
        ceiling.append(tokens / seconds)
        print(f"round {round_index + 1} ceiling: {tokens} tokens in {seconds:.1f} s = {ceiling[-1]:.1f} tok/s")
        tokens, seconds = await ponder_round(backend, strategy, problems)
        ours.append(tokens / seconds)
        print(f"round {round_index + 1} ponder:  {tokens} tokens in {seconds:.1f} s = {ours[-1]:.1f} tok/s")
    ratio = statistics.mean(o / c for o, c in zip(ours, ceiling))
    print(
        f"\nself_consistency n={args.n} on {len(problems)} problems, {args.rounds} rounds, "
        f"stream_interval={args.stream_interval}:\n"
        f"  raw engine ceiling: {statistics.mean(ceiling):.1f} generated tok/s\n"
        f"  ponder:             {statistics.mean(ours):.1f} generated tok/s\n"
        f"  ratio ponder/ceiling: {ratio:.3f} (target >= 0.90)"
    )
    await backend.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--stream-interval", type=int, default=1, help="backend.stream_interval")
    asyncio.run(main(parser.parse_args()))
