"""DeepConf's confidence against the plain vote, on ponder's shipped sets, embedded model.

Per problem, one offline DeepConf run samples ``n`` traces with their top logprobs; the
plain vote (majority@n, self-consistency's answer), pass@n and the offline filters are all
read off those same traces. The online runs sample afresh: ``warmup`` whole traces set the
threshold, the rest stop when their group confidence falls below it or the vote settles.

Each row prints accuracy with a problem-level 95% bootstrap interval, the ratio to
majority@n (paired), generated tokens per problem and their share of majority@n's, and for
online runs the traces stopped early.

    python benchmarks/confidence_selection.py [--problems 40] [--n 16] [--difficulty 2]
        [--sets arithmetic,word_problems] [--window 32]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from selection_accuracy import correct, problem_set, selection_arguments, voted

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.experiments.bootstrap import bootstrap_mean, bootstrap_ratio
from ponder.strategies import DeepConf
from ponder.verifiers.confidence import ConfidenceSettings, keep_threshold
from ponder.verifiers.selection import select


@dataclass
class Row:
    name: str
    right: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    stopped: int = 0


def filtered_vote(candidates: Sequence[Candidate], keep: float) -> str | None:
    """Offline DeepConf's choice among ``candidates`` scored by their confidence."""
    scores = [c.score for c in candidates if c.score is not None]
    threshold = keep_threshold(scores, keep)
    voters = [c for c in candidates if c.answer is not None and (c.score or 0.0) >= threshold]
    voters = voters or [c for c in candidates if c.answer is not None]
    index, _ = select(voters, "weighted", weights=[c.score for c in voters])
    return None if index is None else candidates[index].answer


def add(row: Row, problem: Problem, answer: str | None, result: Result) -> None:
    row.right.append(correct(answer, problem))
    row.tokens.append(result.usage.generated_tokens)
    row.stopped += result.details.get("stopped_low_confidence", 0)
    row.stopped += result.details.get("stopped_settled", 0)


def print_table(name: str, rows: list[Row], seconds: float) -> None:
    base = next(r for r in rows if r.name.startswith("majority"))
    base_tokens = sum(base.tokens)
    print(f"\n{name}: {len(base.right)} problems, {seconds:.0f} s")
    print(f"{'method':28} {'accuracy [95% CI]':24} {'x majority [95% CI]':24} "
          f"{'tokens/problem':>15} {'of majority':>11} {'stopped':>8}")
    for row in rows:
        spent = sum(row.tokens)
        print(f"{row.name:28} {str(bootstrap_mean(row.right)):24} "
              f"{str(bootstrap_ratio(row.right, base.right)):24} "
              f"{spent / len(row.tokens):15.0f} {spent / max(base_tokens, 1):11.0%} "
              f"{row.stopped:8d}")


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    confidence = ConfidenceSettings(window=args.window)
    offline = DeepConf(n=args.n, mode="offline", confidence=confidence)
    online = {
        keep: DeepConf(n=args.n, warmup=args.warmup, keep=keep, confidence=confidence)
        for keep in (0.9, 0.1)
    }
    for name in args.sets.split(","):
        problems = problem_set(name, args.problems, args.difficulty)
        started = time.monotonic()
        runs = await asyncio.gather(*(
            asyncio.gather(*(asolve(p, strategy=s, backend=backend) for p in problems))
            for s in (offline, *online.values())
        ))
        sampled, *streamed = runs
        rows = [Row(f"pass@{args.n}"), Row(f"majority@{args.n}"),
                Row("deepconf offline keep 0.9"), Row("deepconf offline keep 0.1"),
                *(Row(f"deepconf online keep {keep}") for keep in online)]
        for i, problem in enumerate(problems):
            result = sampled[i]
            right = [c.answer for c in result.candidates if correct(c.answer, problem)]
            add(rows[0], problem, right[0] if right else None, result)
            add(rows[1], problem, voted(result.candidates), result)
            add(rows[2], problem, filtered_vote(result.candidates, 0.9), result)
            add(rows[3], problem, filtered_vote(result.candidates, 0.1), result)
            for row, results in zip(rows[4:], streamed):
                add(row, problem, results[i].answer, results[i])
        print_table(name, rows, time.monotonic() - started)
    await engines.close()


if __name__ == "__main__":
    parser = selection_arguments(__doc__, n=16, difficulty=2)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--sets", default="arithmetic,word_problems")
    asyncio.run(main(parser.parse_args()))
