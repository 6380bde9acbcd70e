"""A run's summary computed from hand-made records, every number worked out by hand."""

from __future__ import annotations

import random

import pytest

from ponder.experiments.metrics import default_ks, summarize, vote_at_k
from ponder.experiments.records import CandidateRecord, ProblemRecord
from ponder.verifiers.grading import grade


def record(
    pid: str, reference: str | None, answers: list[str | None], *, lengths: list[int] | None = None,
    scores: list[float | None] | None = None, usage: dict | None = None, wall: float = 1.0,
    selected: int | None = 0, exhausted: bool = False, error: str | None = None,
) -> ProblemRecord:
    lengths = lengths or [10] * len(answers)
    scores = scores or [None] * len(answers)
    candidates = tuple(
        CandidateRecord(index=i, answer=a, grade=grade(a, reference), score=s, num_tokens=n,
                        finish_reason="stop", text=f"... Answer: {a}")
        for i, (a, n, s) in enumerate(zip(answers, lengths, scores))
    )
    answer = answers[selected] if selected is not None and answers else None
    return ProblemRecord(
        id=pid, index=0, question="q", reference=reference, answer=answer, grade=grade(answer, reference),
        selected_index=selected if answers else None, candidates=candidates, usage=usage or {},
        wall_seconds=wall, budget_exhausted=exhausted, exhausted_by="generated_tokens" if exhausted else None,
        details={}, error=error,
    )


RUN = [
    record("a", "4", ["4", "5", "4", "4"], scores=[0.1, 0.9, 0.2, 0.3],
           usage={"generated_tokens": 40, "prompt_tokens": 20, "cached_prompt_tokens": 10, "model_calls": 1}),
    record("b", "7", ["1", "1", "7"], lengths=[5, 5, 9], scores=[0.1, 0.2, 0.9], exhausted=True, wall=2.0,
           usage={"generated_tokens": 25, "prompt_tokens": 20, "cached_prompt_tokens": 0, "model_calls": 2}),
    record("c", None, ["3"], wall=3.0,
           usage={"generated_tokens": 5, "prompt_tokens": 10, "cached_prompt_tokens": 10, "model_calls": 1}),
    record("d", "2", [], selected=None, wall=0.5, error="prompt is 5000 tokens"),
]


def test_counts_and_accuracy_leave_unknown_problems_out() -> None:
    summary = summarize(RUN)
    assert (summary.problems, summary.graded, summary.correct, summary.unknown, summary.errors) == (4, 3, 1, 1, 1)
    assert summary.accuracy == pytest.approx(1 / 3)
    assert summary.budget_exhausted == 1
    assert summary.candidates_per_problem == 2.0


def test_coverage_is_pass_at_k_averaged_over_graded_problems() -> None:
    summary = summarize(RUN)
    assert list(summary.pass_at_k) == [1, 2, 4]  # up to the most candidates of a graded problem
    assert summary.pass_at_k[1] == pytest.approx((3 / 4 + 1 / 3 + 0) / 3)
    assert summary.pass_at_k[2] == pytest.approx((1 + (1 - 1 / 3) + 0) / 3)
    assert summary.pass_at_k[4] == pytest.approx((1 + 1 + 0) / 3)  # b has 3: pass@3; d none: a miss


def test_majority_at_k_votes_over_every_subset() -> None:
    summary = summarize(RUN)
    assert summary.majority_at_k[1] == pytest.approx(summary.pass_at_k[1])
    # a: of 6 pairs, the two "5"-first pairs tie and go to the earlier group ("5"); b: "1" always wins
    assert summary.majority_at_k[2] == pytest.approx((4 / 6 + 0 + 0) / 3)
    assert summary.majority_at_k[4] == pytest.approx((1 + 0 + 0) / 3)


def test_weighted_at_k_votes_with_the_scores() -> None:
    summary = summarize(RUN)
    assert summary.weighted_at_k is not None
    assert summary.weighted_at_k[2] == pytest.approx((3 / 6 + 2 / 3 + 0) / 3)
    assert summary.weighted_at_k[4] == pytest.approx((0 + 1 + 0) / 3)  # a: "5" (0.9) beats "4" (0.6)


def test_weighted_at_k_is_absent_without_scores() -> None:
    unscored = [record("x", "1", ["1", "2"])]
    assert summarize(unscored).weighted_at_k is None


def test_usage_is_per_problem_and_the_cache_rate_is_over_all_prompts() -> None:
    summary = summarize(RUN)
    assert summary.tokens_per_problem["generated_tokens"] == pytest.approx(70 / 4)
    assert summary.tokens_per_problem["model_calls"] == pytest.approx(4 / 4)
    assert summary.prefix_cache_hit_rate == pytest.approx(20 / 50)
    assert summary.wall_seconds_per_problem == pytest.approx((1 + 2 + 3 + 0.5) / 4)


def test_chosen_ks_and_the_order_of_records_do_not_matter() -> None:
    many = [record(f"p{i}", "1", [str(j % 3) for j in range(i, i + 12)]) for i in range(5)]
    forward = summarize(many, ks=[5, 3], subsamples=20, seed=1)
    backward = summarize(list(reversed(many)), ks=[3, 5], subsamples=20, seed=1)
    assert list(forward.majority_at_k) == [3, 5]
    for metric in ("pass_at_k", "majority_at_k"):  # equal up to the order of a float sum
        assert getattr(forward, metric) == pytest.approx(getattr(backward, metric), abs=1e-12)
    assert 0 < forward.majority_at_k[3] < 1


def test_sampled_subsets_estimate_the_exact_vote() -> None:
    candidates = record("x", "1", ["1", "2", "1", "3", "2", "1", "4", "2", "1", "5"]).candidates
    exact = vote_at_k(candidates, 5, weighted=False, subsamples=252, rng=random.Random(0))  # C(10,5)
    sampled = vote_at_k(candidates, 5, weighted=False, subsamples=200, rng=random.Random(0))
    assert 0 < exact < 1
    assert sampled == pytest.approx(exact, abs=0.08)


@pytest.mark.parametrize(("largest", "ks"), [(0, []), (1, [1]), (8, [1, 2, 4, 8]), (6, [1, 2, 4, 6])])
def test_default_ks_are_powers_of_two_and_the_largest(largest: int, ks: list[int]) -> None:
    assert default_ks(largest) == ks
