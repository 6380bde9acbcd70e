"""A run's summary, computed from its records: the strategy's accuracy, and from the same
candidates coverage (pass@k), majority@k and weighted@k.

pass@k is the unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``: the
chance that k candidates drawn without replacement from a problem's n (c of them correct)
include a correct one. majority@k and weighted@k are the chance that a vote among k such
candidates picks a correct answer (weighted: each candidate votes with its verifier score,
0 when it has none; equivalent answers vote together; ties as in ``majority_vote``). They
are computed exactly, over every k-subset, when a problem has at most ``subsamples`` of
them, else over ``subsamples`` random k-subsets drawn from a generator seeded by the run's
seed, the problem's id and k (so they do not depend on the order problems finished in).

A problem with fewer than k candidates (a budget cut it short) counts with all it has; one
with none counts as a miss. Only problems with a reference answer are graded.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence

from pydantic import BaseModel, Field

from ponder.errors import BadRequestError
from ponder.experiments.records import CandidateRecord, ProblemRecord
from ponder.verifiers.grading import Grade
from ponder.verifiers.vote import majority_vote

_TOKEN_COUNTS = (
    "generated_tokens", "thinking_tokens", "cancelled_tokens", "prompt_tokens",
    "cached_prompt_tokens", "total_tokens", "model_calls", "verifier_calls",
)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that k of n candidates, c of them correct, include a correct one."""
    if not 0 <= c <= n:
        raise BadRequestError(f"c must be in [0, n={n}], got {c}")
    if not 1 <= k <= n:
        raise BadRequestError(f"k must be in [1, n={n}], got {k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def vote_at_k(
    candidates: Sequence[CandidateRecord],
    k: int,
    *,
    weighted: bool,
    subsamples: int,
    rng: random.Random,
) -> float:
    """The chance that a vote among k of ``candidates`` picks a correct one (see the module)."""
    if not candidates:
        return 0.0
    subsets = list(_subsets(len(candidates), min(k, len(candidates)), subsamples, rng))
    wins = sum(_vote_is_correct([candidates[i] for i in subset], weighted) for subset in subsets)
    return wins / len(subsets)


def _subsets(n: int, k: int, limit: int, rng: random.Random) -> Iterator[tuple[int, ...]]:
    if math.comb(n, k) <= limit:
        yield from itertools.combinations(range(n), k)
        return
    for _ in range(limit):
        yield tuple(sorted(rng.sample(range(n), k)))


def _vote_is_correct(candidates: Sequence[CandidateRecord], weighted: bool) -> bool:
    vote = majority_vote(
        [c.answer for c in candidates],
        [c.num_tokens for c in candidates],
        [c.score or 0.0 for c in candidates] if weighted else None,
    )
    return vote.winner_index is not None and candidates[vote.winner_index].grade == Grade.CORRECT


class Summary(BaseModel):
    """What a run achieved and what it cost, per problem."""

    problems: int = Field(description="Problems with a record.")
    graded: int = Field(description="Of those, problems with a reference answer.")
    correct: int
    unknown: int = Field(description="Problems without a reference (neither right nor wrong).")
    errors: int = Field(description="Problems the strategy failed on (counted as wrong).")
    accuracy: float | None = Field(description="correct / graded: the strategy's own answers.")
    pass_at_k: dict[int, float] = Field(description="Coverage: unbiased pass@k, per k.")
    majority_at_k: dict[int, float]
    weighted_at_k: dict[int, float] | None = Field(
        description="None when no candidate of the run has a score."
    )
    candidates_per_problem: float
    tokens_per_problem: dict[str, float] = Field(description="Means of the usage counts.")
    wall_seconds_per_problem: float
    prefix_cache_hit_rate: float = Field(description="Cached prompt tokens / prompt tokens.")
    budget_exhausted: int = Field(description="Problems the budget cut short.")


def default_ks(largest: int) -> list[int]:
    """1, 2, 4, ... up to ``largest``, and ``largest`` itself."""
    ks = [2**i for i in range(largest.bit_length()) if 2**i <= largest]
    return ks + [largest] if largest and ks[-1] != largest else ks


def summarize(
    records: Sequence[ProblemRecord],
    *,
    ks: Sequence[int] | None = None,
    subsamples: int = 64,
    seed: int = 0,
) -> Summary:
    """The summary of ``records``; ``ks`` default to ``default_ks`` of the most candidates."""
    if subsamples < 1:
        raise BadRequestError(f"subsamples must be >= 1, got {subsamples}")
    graded = [r for r in records if r.grade != Grade.UNKNOWN]
    largest = max((len(r.candidates) for r in graded), default=0)
    ks = sorted(set(ks)) if ks else default_ks(largest)
    if ks and ks[0] < 1:
        raise BadRequestError(f"k must be >= 1, got {ks[0]}")
    scored = any(c.score is not None for r in graded for c in r.candidates)

    def per_k(metric: Callable[[ProblemRecord, int], float]) -> dict[int, float]:
        return {k: sum(metric(r, k) for r in graded) / len(graded) for k in ks} if graded else {}

    def vote(weighted: bool) -> Callable[[ProblemRecord, int], float]:
        def at_k(record: ProblemRecord, k: int) -> float:
            rng = random.Random(f"{seed}:{record.id}:{k}")  # the same subsets for both votes
            return vote_at_k(
                record.candidates, k, weighted=weighted, subsamples=subsamples, rng=rng
            )

        return at_k

    count = len(records)
    usage_sum = {key: sum(r.usage.get(key, 0) for r in records) for key in _TOKEN_COUNTS}
    correct = sum(r.grade == Grade.CORRECT for r in records)
    return Summary(
        problems=count,
        graded=len(graded),
        correct=correct,
        unknown=count - len(graded),
        errors=sum(r.error is not None for r in records),
        accuracy=correct / len(graded) if graded else None,
        pass_at_k=per_k(_coverage),
        majority_at_k=per_k(vote(weighted=False)),
        weighted_at_k=per_k(vote(weighted=True)) if scored else None,
        candidates_per_problem=_mean([len(r.candidates) for r in records]),
        tokens_per_problem={k: total / count if count else 0.0 for k, total in usage_sum.items()},
        wall_seconds_per_problem=_mean([r.wall_seconds for r in records]),
        prefix_cache_hit_rate=_ratio(usage_sum["cached_prompt_tokens"], usage_sum["prompt_tokens"]),
        budget_exhausted=sum(r.budget_exhausted for r in records),
    )


def _coverage(record: ProblemRecord, k: int) -> float:
    n = len(record.candidates)
    correct = sum(c.grade == Grade.CORRECT for c in record.candidates)
    return pass_at_k(n, correct, min(k, n)) if n else 0.0


def _mean(values: Sequence[float]) -> float:
    return _ratio(sum(values), len(values))


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
