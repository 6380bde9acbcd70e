"""A verifier learned from labelled outcomes against the vote, on problems it was not trained
on, embedded model.

1. Train (as ``ponder verifier train`` does): sample ``n`` chains on the training problems,
   label each by its grade and its first steps by Monte Carlo roll-outs, embed every path on
   vLLM's pooling runner, fit the heads (``fit_verifier``). Chains are sampled once and fitted
   on every feature layer asked for, so layers compare on the same examples.
2. Test: sample ``n`` chains per test problem (self-consistency, in words) and read every
   method off those same samples: pass@n, majority@n, best-of-n by each head (argmax), and the
   vote weighted by its scores.

Printed: each head's validation AUC (held-out training problems, which also picked the head
kind) and its AUC on the test chains (problems never seen); then accuracy with a problem-level
95% bootstrap interval, the paired ratio to majority@n, and generated tokens per problem
(scoring costs prompt tokens on the embedding engine, not generated ones).

    python benchmarks/learned_verifier.py [--set arithmetic|word_problems] [--train 80]
        [--test 60] [--n 8] [--rollouts 2] [--max-steps 1] [--layers last,20]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sklearn.metrics import roc_auc_score

from ponder.api import asolve
from ponder.backends.base import Backend
from ponder.backends.pool import engines
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.experiments.bootstrap import bootstrap_mean, bootstrap_ratio
from ponder.experiments.datasets import load_problems
from ponder.experiments.verifier_training import TrainConfig, fit_verifier, sample_and_label, sampling_strategy
from ponder.runtime import Run
from ponder.strategies import SelfConsistency
from ponder.verifiers import LearnedVerifier, grade
from ponder.verifiers.heads import save_verifier
from ponder.verifiers.selection import select
from ponder.verifiers.vote import majority_vote


def splits(name: str, train: int, test: int, difficulty: int) -> tuple[list[Problem], list[Problem]]:
    """Training and test problems with no prompt in common."""
    if name == "arithmetic":
        def generated(seed: int, size: int) -> list[Problem]:
            return load_problems({"source": "arithmetic", "size": size, "difficulty": difficulty,
                                  "seed": seed})
        held = generated(0, test)
        seen = {p.prompt for p in held}
        return [p for p in generated(1, train + test) if p.prompt not in seen][:train], held
    problems = load_problems({"source": "packaged", "name": "word_problems",
                              "path": "word_problems.jsonl", "shuffle": True, "seed": 0})
    return problems[:train], problems[train : train + test]


def correct(answer: str | None, problem: Problem) -> float:
    return float(grade(answer, problem.reference) == "correct")


def weighted_vote(candidates: Sequence[Candidate]) -> str | None:
    weights = [0.0 if c.score is None else c.score for c in candidates]
    vote = majority_vote([c.answer for c in candidates], weights)
    return None if vote.winner_index is None else candidates[vote.winner_index].answer


def best(candidates: Sequence[Candidate]) -> str | None:
    index, _ = select(list(candidates), "argmax")
    return None if index is None else candidates[index].answer


async def scored(
    verifier: LearnedVerifier, problem: Problem, result: Result, backend: Backend
) -> list[Candidate]:
    ctx = Run(backend, Ledger(Budget()))
    scores = await verifier.score(problem, result.candidates, ctx)
    return [dataclasses.replace(c, score=s.value) for c, s in zip(result.candidates, scores)]


def auc(problems: Sequence[Problem], per_problem: Sequence[Sequence[Candidate]]) -> float:
    labels, values = [], []
    for problem, candidates in zip(problems, per_problem):
        for c in candidates:
            if c.score is not None:
                labels.append(correct(c.answer, problem))
                values.append(c.score)
    return float(roc_auc_score(labels, values)) if 0 < sum(labels) < len(labels) else float("nan")


def print_row(name: str, right: list[float], base: list[float], tokens: float) -> None:
    print(f"{name:40} {str(bootstrap_mean(right)):24} {str(bootstrap_ratio(right, base)):26} "
          f"{tokens:.0f}")


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    train_problems, test_problems = splits(args.set, args.train, args.test, args.difficulty)
    config = TrainConfig(
        dataset={}, backend={"model": "embedded"}, progress=False,
        strategy={"name": "self_consistency", "n": args.n},
        labels={"rollouts": args.rollouts, "max_steps": args.max_steps},
    )
    started = time.monotonic()
    chains, spent = await sample_and_label(
        train_problems, sampling_strategy(config.strategy), backend, config.labels,
        delimiter=config.features.step_delimiter,
    )
    print(f"{args.set}: trained on {len(train_problems)} problems ({len(chains)} chains, "
          f"{sum(c.outcome for c in chains):.0f} correct; {spent.generated_tokens} generated "
          f"tokens with roll-outs, {time.monotonic() - started:.0f} s), tested on "
          f"{len(test_problems)} others")
    results = await asyncio.gather(*(asolve(p, strategy=SelfConsistency(n=args.n), backend=backend)
                                     for p in test_problems))
    tokens = sum(r.usage.generated_tokens for r in results) / len(results)
    right = {
        f"pass@{args.n}": [max((correct(c.answer, p) for c in r.candidates), default=0.0)
                           for p, r in zip(test_problems, results)],
        f"majority@{args.n}": [correct(r.answer, p) for p, r in zip(test_problems, results)],
    }
    folder = Path(tempfile.mkdtemp(prefix="ponder-learned-"))
    print(f"{'head':40} {'kind':14} {'val AUC':>8} {'test AUC':>9}")
    for layer in args.layers.split(","):
        spec = config.features.model_copy(update={"layer": None if layer == "last" else int(layer)})
        trained = await fit_verifier(chains, config.model_copy(update={"features": spec}), backend,
                                     spent=spent)
        path = save_verifier(trained.file, folder / f"layer-{layer}.json")
        for mode, head in trained.file.heads.items():
            verifier = LearnedVerifier(path=str(path), mode=mode)
            per_problem = await asyncio.gather(*(scored(verifier, p, r, backend)
                                                 for p, r in zip(test_problems, results)))
            name = f"layer {layer}, {mode} head"
            validation = head.metrics.validation_auc
            print(f"{name:40} {head.metrics.kind:14} "
                  f"{'n/a' if validation is None else f'{validation:.3f}':>8} "
                  f"{auc(test_problems, per_problem):9.3f}")
            right[f"best-of-{args.n}, {name}"] = [
                correct(best(c), p) for p, c in zip(test_problems, per_problem)]
            right[f"weighted vote, {name}"] = [
                correct(weighted_vote(c), p) for p, c in zip(test_problems, per_problem)]
    base = right[f"majority@{args.n}"]
    print(f"\n{'method (test problems)':40} {'accuracy [95% CI]':24} {'x majority [95% CI]':26} "
          "generated tokens/problem")
    for name, values in right.items():
        print_row(name, values, base, tokens)
    print(f"({time.monotonic() - started:.0f} s in all)")
    await engines.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="arithmetic", choices=["arithmetic", "word_problems"])
    parser.add_argument("--train", type=int, default=80)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--difficulty", type=int, default=2, help="of the arithmetic set")
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=1)
    parser.add_argument("--layers", default="last,20",
                        help="feature layers, comma-separated ('last' or a number of layers)")
    asyncio.run(main(parser.parse_args()))
