"""Adaptive sampling with self-evaluation against self-consistency, on ponder's shipped sets,
embedded model.

Per problem: self-consistency with ``n`` chains (the baseline), ``adaptive`` with
``n_max=n`` (waves 1, 2, 4, ... until the best chain's self-evaluation reaches the threshold),
and the same with pruning at ``--prune-at`` tokens. Each row prints accuracy with a
problem-level 95% bootstrap interval, the ratio to self-consistency (paired), generated
tokens per problem (the self-evaluation tokens included) and their share of
self-consistency's, mean samples per problem, and, with pruning, the chains pruned; then how
well the self-evaluation ranks right chains above wrong ones (ROC AUC).

    python benchmarks/adaptive_sampling.py [--problems 40] [--n 8] [--threshold 0.8]
        [--prune-at 48] [--sets arithmetic,word_problems]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
from selection_accuracy import correct, problem_set, selection_arguments
from sklearn.metrics import roc_auc_score

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.experiments.bootstrap import bootstrap_mean, bootstrap_ratio
from ponder.strategies import AdaptiveSampling, SelfConsistency, Strategy


def score_auc(problems: list[Problem], results: list[Result]) -> str:
    """How well the verifier's scores of the chains that ran to their end rank right chains
    above wrong ones (ROC AUC; 0.5 is chance), with the scores' spread."""
    pairs = [(c.score, correct(c.answer, p)) for p, r in zip(problems, results)
             for c in r.candidates if c.score is not None and c.finish_reason != "aborted"]
    scores, right = [s for s, _ in pairs], [y for _, y in pairs]
    if len(set(right)) < 2:
        return f"{len(pairs)} scored chains, all {'right' if any(right) else 'wrong'}"
    low, mid, high = np.quantile(scores, [0.1, 0.5, 0.9])
    return (f"AUC {roc_auc_score(right, scores):.3f} over {len(pairs)} chains "
            f"({sum(right):.0f} right); scores p10 {low:.3f}, p50 {mid:.3f}, p90 {high:.3f}")


def print_table(
    name: str, problems: list[Problem], runs: dict[str, list[Result]], seconds: float
) -> None:
    rights = {k: [correct(r.answer, p) for p, r in zip(problems, rs)] for k, rs in runs.items()}
    spent = {k: [r.usage.generated_tokens for r in rs] for k, rs in runs.items()}
    base = next(iter(runs))
    print(f"\n{name}: {len(problems)} problems, {seconds:.0f} s")
    print(f"{'method':26} {'accuracy [95% CI]':24} {'x self-consistency':24} "
          f"{'tokens/problem':>15} {'of sc':>6} {'samples':>8} {'pruned':>7}")
    for key, results in runs.items():
        samples = sum(len(r.candidates) for r in results) / len(results)
        pruned = sum(r.details.get("pruned", 0) for r in results)
        print(f"{key:26} {str(bootstrap_mean(rights[key])):24} "
              f"{str(bootstrap_ratio(rights[key], rights[base])):24} "
              f"{sum(spent[key]) / len(results):15.0f} "
              f"{sum(spent[key]) / max(sum(spent[base]), 1):6.0%} {samples:8.2f} {pruned:7d}")
    adaptive = next(key for key in runs if key.startswith("adaptive"))
    print(f"self_eval scores ({adaptive}): {score_auc(problems, runs[adaptive])}")


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    methods: dict[str, Strategy] = {
        f"self-consistency n={args.n}": SelfConsistency(n=args.n),
        f"adaptive n_max={args.n}": AdaptiveSampling(n_max=args.n, threshold=args.threshold),
        f"adaptive, pruned at {args.prune_at}": AdaptiveSampling(
            n_max=args.n, threshold=args.threshold, prune_at=(args.prune_at,)
        ),
    }
    for name in args.sets.split(","):
        problems = problem_set(name, args.problems, args.difficulty)
        started = time.monotonic()
        results = await asyncio.gather(*(
            asyncio.gather(*(asolve(p, strategy=s, backend=backend) for p in problems))
            for s in methods.values()
        ))
        runs = {key: list(rs) for key, rs in zip(methods, results)}
        print_table(name, problems, runs, time.monotonic() - started)
    await engines.close()


if __name__ == "__main__":
    parser = selection_arguments(__doc__, n=8, difficulty=2)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--prune-at", type=int, default=48)
    parser.add_argument("--sets", default="arithmetic,word_problems")
    asyncio.run(main(parser.parse_args()))
