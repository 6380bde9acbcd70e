"""Free-form selection against the vote, on ponder's word problems (or arithmetic), embedded
model.

Per problem, self-consistency samples ``n`` chains once; every method is read off those same
chains:

- majority@n with answer extraction on (the vote over extracted answers: the baseline);
- MBR over the whole texts, extraction off (the chain with the highest mean chrF to the
  others);
- USC over the whole texts (one greedy model call per problem names the most consistent).

The free-form methods are graded as the reference grader reads the chosen text (the answer
extracted from it), so they are judged on the same terms as the vote. Each row prints
accuracy with a problem-level 95% bootstrap interval and the ratio to majority@n (paired).

    python benchmarks/free_form_selection.py [--problems 40] [--n 8]
        [--set word_problems|arithmetic] [--difficulty 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from selection_accuracy import correct, problem_set, selection_arguments

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.experiments.bootstrap import bootstrap_mean, bootstrap_ratio
from ponder.runtime import Run
from ponder.strategies import SelfConsistency
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.free_form import mbr_choice, usc_reply

EXTRACTOR = AnswerExtractor()


async def usc_text(problem: Problem, texts: list[str], run: Run) -> tuple[str | None, str]:
    """The text USC names (None when it names none) and the model's reply."""
    reply = await usc_reply(problem, texts, run)
    return None if reply.position is None else texts[reply.position], str(reply.reply)


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    problems = problem_set(args.set, args.problems, args.difficulty)
    started = time.monotonic()
    results: list[Result] = list(await asyncio.gather(*(
        asolve(p, strategy=SelfConsistency(n=args.n), backend=backend) for p in problems
    )))
    texts = [[c.text for c in r.candidates] for r in results]
    usc = await asyncio.gather(*(
        usc_text(p, t, Run(backend, Ledger(Budget()))) for p, t in zip(problems, texts)
    ))
    rows: dict[str, list[float]] = {f"majority@{args.n}, extracted": [], "mbr, whole texts": [],
                                    "usc, whole texts": []}
    usc_named = 0
    for problem, result, chains, (named, _) in zip(problems, results, texts, usc):
        mbr = mbr_choice(chains)
        mbr_text = chains[mbr.position] if mbr.position is not None else ""
        rows[f"majority@{args.n}, extracted"].append(correct(result.answer, problem))
        rows["mbr, whole texts"].append(correct(EXTRACTOR.extract(mbr_text), problem))
        rows["usc, whole texts"].append(correct(EXTRACTOR.extract(named or ""), problem))
        usc_named += named is not None
    base = rows[f"majority@{args.n}, extracted"]
    print(f"\n{args.set}: {len(problems)} problems, n={args.n}, "
          f"{time.monotonic() - started:.0f} s; USC named a response for {usc_named}; "
          f"its first replies: {[reply for _, reply in usc[:3]]}")
    print(f"{'method':26} {'accuracy [95% CI]':24} x majority [95% CI]")
    for name, right in rows.items():
        print(f"{name:26} {str(bootstrap_mean(right)):24} {bootstrap_ratio(right, base)}")
    await engines.close()


if __name__ == "__main__":
    parser = selection_arguments(__doc__, n=8, difficulty=2)
    parser.add_argument("--set", default="word_problems", choices=["word_problems", "arithmetic"])
    asyncio.run(main(parser.parse_args()))
