"""Selection grounded in execution: program-of-thought chains and CoT-PoT verification against
the self-consistency vote, on ponder's shipped arithmetic and word problems, embedded model.

Per problem, two runs: self-consistency over ``n`` chains in words and over ``n`` program
chains. Every method is then read off those same samples:

- pass@n (words): some word chain is right (the ceiling of selection among them);
- majority@n (words): self-consistency's vote, the baseline;
- programs@n: self-consistency over the programs (the answer is what they print);
- mixed: the vote over the first n/2 word chains and the first n/2 programs (as
  ``format=mixed`` draws them);
- cot_pot: best-of-n over the n word chains, each scored by its agreement with the n
  programs' answers (the ``cot_pot`` verifier's score, ``agreement_scores``).

Each row prints accuracy with a problem-level 95% bootstrap interval, the ratio to majority@n
with its paired interval, and generated tokens per problem (so methods compare at equal
tokens). The program rows also print how many program chains ran and printed a value.

    python benchmarks/selection_accuracy.py [--problems 40] [--n 8] [--difficulty 3]
        [--examples 2] [--sets arithmetic,word_problems]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.experiments.bootstrap import bootstrap_mean, bootstrap_ratio
from ponder.experiments.datasets import load_problems
from ponder.strategies import SelfConsistency
from ponder.verifiers import grade
from ponder.verifiers.cot_pot import agreement_scores
from ponder.verifiers.programs import DEFAULT_EXAMPLES, ProgramFormat
from ponder.verifiers.selection import select
from ponder.verifiers.vote import majority_vote


@dataclass
class Row:
    name: str
    right: list[float]
    tokens: list[int]


def problem_set(name: str, count: int, difficulty: int) -> list[Problem]:
    if name == "arithmetic":
        config = {"source": "arithmetic", "size": count, "difficulty": difficulty, "seed": 0}
    else:
        config = {"source": "packaged", "name": "word_problems", "path": "word_problems.jsonl",
                  "limit": count}
    return load_problems(config)


def selection_arguments(doc: str, *, n: int, difficulty: int) -> argparse.ArgumentParser:
    """The arguments every selection benchmark takes (problems, n, the arithmetic set's
    difficulty), with the engine's logs quieted."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--n", type=int, default=n)
    parser.add_argument("--difficulty", type=int, default=difficulty,
                        help="of the arithmetic set")
    return parser


def correct(answer: str | None, problem: Problem) -> float:
    return float(grade(answer, problem.reference) == "correct")


def voted(candidates: Sequence[Candidate]) -> str | None:
    vote = majority_vote([c.answer for c in candidates], [c.num_tokens for c in candidates])
    return None if vote.winner_index is None else candidates[vote.winner_index].answer


def cot_pot_answer(words: Sequence[Candidate], programs: Sequence[Candidate]) -> str | None:
    scores = agreement_scores([c.answer for c in words], [c.answer for c in programs], 0.5)
    if all(score is None for score in scores):  # no program answered: the verifier's fallback
        scores = agreement_scores([c.answer for c in words], [c.answer for c in words], 1.0)
    scored = [Candidate(index=c.index, text=c.text, num_tokens=c.num_tokens,
                        finish_reason=c.finish_reason, answer=c.answer, score=s)
              for c, s in zip(words, scores)]
    index, _ = select(scored, "argmax")
    return None if index is None else scored[index].answer


def tokens(candidates: Sequence[Candidate]) -> int:
    return sum(c.num_tokens for c in candidates)


def rows_for(problems: list[Problem], words: list[Result], programs: list[Result]) -> list[Row]:
    half = len(words[0].candidates) // 2
    table = {name: Row(name, [], []) for name in
             ("pass@n (words)", "majority@n (words)", "programs@n", "mixed n/2+n/2", "cot_pot")}
    for problem, w, p in zip(problems, words, programs):
        cw, cp = w.candidates, p.candidates
        mixed = [*cw[:half], *cp[:half]]
        outcomes = {
            "pass@n (words)": (max((correct(c.answer, problem) for c in cw), default=0.0),
                               tokens(cw)),
            "majority@n (words)": (correct(w.answer, problem), tokens(cw)),
            "programs@n": (correct(p.answer, problem), tokens(cp)),
            "mixed n/2+n/2": (correct(voted(mixed), problem), tokens(mixed)),
            "cot_pot": (correct(cot_pot_answer(cw, cp), problem), tokens(cw) + tokens(cp)),
        }
        for name, (right, spent) in outcomes.items():
            table[name].right.append(right)
            table[name].tokens.append(spent)
    return list(table.values())


def print_table(name: str, rows: list[Row], programs: list[Result], seconds: float) -> None:
    chains = [c for r in programs for c in r.candidates]
    ran = sum(c.answer is not None for c in chains)
    reasons: dict[str, int] = {}
    for c in chains:
        if c.answer is None and c.program is not None:
            key = (c.program.error or "").split(":")[0][:60]
            reasons[key] = reasons.get(key, 0) + 1
    base = next(r for r in rows if r.name.startswith("majority"))
    print(f"\n{name}: {len(rows[0].right)} problems, {seconds:.0f} s")
    print(f"program chains that ran and printed a value: {ran}/{len(chains)} "
          f"({ran / max(len(chains), 1):.0%}); no answer: {reasons}")
    print(f"{'method':22} {'accuracy [95% CI]':24} {'x majority [95% CI]':26} tokens/problem")
    for row in rows:
        ratio = bootstrap_ratio(row.right, base.right)
        print(f"{row.name:22} {str(bootstrap_mean(row.right)):24} {str(ratio):26} "
              f"{sum(row.tokens) / len(row.tokens):.0f}")


async def main(args: argparse.Namespace) -> None:
    backend = await engines.backend("embedded")
    program = ProgramFormat(examples=DEFAULT_EXAMPLES[: args.examples])
    for name in args.sets.split(","):
        problems = problem_set(name, args.problems, args.difficulty)
        started = time.monotonic()
        words, programs = await asyncio.gather(
            asyncio.gather(*(asolve(p, strategy=SelfConsistency(n=args.n), backend=backend)
                             for p in problems)),
            asyncio.gather(*(asolve(p, strategy=SelfConsistency(
                n=args.n, format="program", program=program), backend=backend)
                for p in problems)),
        )
        print_table(name, rows_for(problems, list(words), list(programs)), list(programs),
                    time.monotonic() - started)
    await engines.close()


if __name__ == "__main__":
    parser = selection_arguments(__doc__, n=8, difficulty=3)
    parser.add_argument("--examples", type=int, default=len(DEFAULT_EXAMPLES),
                        help="worked examples shown to program chains (0 to 6)")
    parser.add_argument("--sets", default="arithmetic,word_problems")
    asyncio.run(main(parser.parse_args()))
