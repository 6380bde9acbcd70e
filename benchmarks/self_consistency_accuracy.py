"""Does spending more samples help? Single-chain accuracy against the self-consistency vote,
from the same chains, on the shared arithmetic questions with the embedded model.

For each question one ``self_consistency`` run with n chains: the single-chain accuracy is
the fraction of its chains whose answer is right (the expected accuracy of n=1), the vote's
accuracy is whether the majority answer is right. Both come from the same samples.

    python benchmarks/self_consistency_accuracy.py [--n 16] [--problems 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os

import arithmetic

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.strategies import SelfConsistency
from ponder.verifiers import grade


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    problems = arithmetic.problems(args.problems)
    strategy = SelfConsistency(n=args.n)
    results = await asyncio.gather(*(asolve(p, strategy=strategy, backend=backend) for p in problems))
    single, voted = [], []
    for problem, result in zip(problems, results):
        right = [grade(c.answer, problem.reference) == "correct" for c in result.candidates]
        single.append(sum(right) / len(right))
        voted.append(grade(result.answer, problem.reference) == "correct")
        print(f"{problem.prompt[:50]:50}  chains right {sum(right):2}/{len(right)}  vote {result.answer!r:8} {'right' if voted[-1] else 'wrong'}")
    print(
        f"\n{len(problems)} questions, n={args.n}: single chain {sum(single) / len(single):.0%} right, "
        f"self-consistency vote {sum(voted) / len(voted):.0%} right"
    )
    await backend.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--problems", type=int, default=12)
    asyncio.run(main(parser.parse_args()))
