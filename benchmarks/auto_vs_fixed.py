"""Strategy 'auto' against fixed strategies, on problems its profile was not made on.

The profile (default: the shipped ``configs/profiles/embedded.yaml``, made by ``ponder tune`` on
the arithmetic set of seed 0) is tried on the arithmetic set of another seed. Rows, all on the
same problems with the embedded model:

- ``auto`` at each ``--token-price`` (default: the profile's): the probe, then the strategy
  the profile chooses per question (its tokens include the probe's);
- every point of the profile run as a fixed strategy on every problem;
- self-consistency with N=8 at its defaults (chains in words), the usual fixed baseline.

Each row prints accuracy with a problem-level 95% bootstrap interval, mean generated tokens
per problem, and the paired difference in accuracy to the first ``auto`` row with its
interval. The summary names, for each ``auto`` row, the best fixed row at no more tokens
(picked on this split, which flatters the fixed strategies: a user would have had to pick it
in advance), and the baseline's accuracy and tokens against it.

    python benchmarks/auto_vs_fixed.py [--problems 60] [--seed 1] [--profile FILE]
        [--budget 2000] [--token-price 0.1 --token-price 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selection_accuracy import correct

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.core.problem import Problem
from ponder.experiments.bootstrap import bootstrap_difference, bootstrap_mean
from ponder.experiments.datasets import load_problems
from ponder.strategies.profile import default_profile_path, load_profile

CONCURRENCY = 16


@dataclass
class Row:
    name: str
    right: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    chosen: dict[str, int] = field(default_factory=dict)


def label(strategy: Mapping[str, Any]) -> str:
    """A strategy config in a few words: its name and the top-level settings it has."""
    shown = {k: v for k, v in strategy.items() if k in ("n", "k", "m", "selection")}
    if isinstance(strategy.get("verifier"), Mapping):
        shown["verifier"] = strategy["verifier"].get("name")
    if isinstance(strategy.get("sampling"), Mapping):
        shown["T"] = strategy["sampling"].get("temperature")
    return f"{strategy['name']}({', '.join(f'{k}={v}' for k, v in shown.items())})"


async def run_row(name: str, strategy: Any, problems: list[Problem], budget: int | None) -> Row:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(problem: Problem) -> tuple[float, int, str | None]:
        async with gate:
            result = await asolve(problem, strategy=strategy, budget=budget and {"generated_tokens": budget})
        chosen = result.details.get("auto", {}).get("strategy")
        return correct(result.answer, problem), result.usage.generated_tokens, chosen and label(chosen)

    row = Row(name)
    for right, tokens, chosen in await asyncio.gather(*(one(p) for p in problems)):
        row.right.append(right)
        row.tokens.append(tokens)
        if chosen:
            row.chosen[chosen] = row.chosen.get(chosen, 0) + 1
    return row


def print_rows(rows: list[Row], auto: Row) -> None:
    print(f"{'strategy':44} {'accuracy [95% CI]':24} {'tokens':>7}  {'vs auto [95% CI]':>22}")
    for row in rows:
        acc = bootstrap_mean(row.right)
        tokens = sum(row.tokens) / len(row.tokens)
        diff = "" if row is auto else _difference(row, auto)
        print(f"{row.name:44} {acc.estimate:.3f} [{acc.low:.3f}, {acc.high:.3f}]     {tokens:7.0f}  {diff:>22}")


def _difference(row: Row, auto: Row) -> str:
    d = bootstrap_difference(row.right, auto.right)
    return f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def mean_tokens(row: Row) -> float:
    return sum(row.tokens) / len(row.tokens)


async def main(args: argparse.Namespace) -> None:
    profile_path = args.profile or default_profile_path()
    profile = load_profile(profile_path, model="embedded")
    problems = load_problems({"source": "arithmetic", "size": args.problems, "difficulty": 1,
                              "seed": args.seed})
    await engines.backend("embedded")
    started = time.monotonic()
    autos = []
    for price in args.token_price or [profile.token_price]:
        config = {"name": "auto", "profile": str(profile_path), "token_price": price}
        autos.append(await run_row(f"auto, token price {price:g}", config, problems, args.budget))
    fixed = [await run_row(label(p.strategy), dict(p.strategy), problems, args.budget)
             for p in profile.points]
    baseline = await run_row("self_consistency(n=8) baseline", {"name": "self_consistency", "n": 8},
                             problems, args.budget)
    print(f"{len(problems)} arithmetic problems of seed {args.seed} (the profile's: {profile.source}); "
          f"budget {args.budget or 'none'} generated tokens per problem; {time.monotonic() - started:.0f} s")
    print_rows([*autos, *fixed, baseline], autos[0])
    for auto in autos:
        print(f"{auto.name} chose: "
              + ", ".join(f"{name} x{count}" for name, count in sorted(auto.chosen.items())))
        affordable = [row for row in fixed if mean_tokens(row) <= mean_tokens(auto)]
        if affordable:
            best = max(affordable, key=lambda row: sum(row.right))
            print(f"  best fixed at no more tokens ({mean_tokens(auto):.0f}): {best.name}, "
                  f"accuracy difference to auto {_difference(best, auto)}")
        else:
            print(f"  no fixed point of the profile costs as little ({mean_tokens(auto):.0f} tokens)")
        print(f"  self-consistency N=8 against it: {_difference(baseline, auto)} accuracy, "
              f"{mean_tokens(baseline) / mean_tokens(auto):.2f}x the tokens")
    await engines.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1, help="the held-out set's seed (the profile's is 0)")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--budget", type=int, default=None, help="generated tokens per problem")
    parser.add_argument("--token-price", type=float, action="append", default=None,
                        help="auto's token price (repeat for several auto rows; default: the profile's)")
    asyncio.run(main(parser.parse_args()))
