"""Oracle difficulty from hand-made records, its bins, the probe's features, the thresholds
fitted to them and a run's accuracy per bin."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.errors import BadRequestError
from ponder.experiments.records import CandidateRecord, ProblemRecord
from ponder.strategies.profile import BUCKETS, Thresholds
from ponder.tuning.difficulty import (
    ProbeFeatures, accuracy_by_bin, fit_thresholds, oracle_bins, pass_rates, probe_features,
)
from ponder.verifiers.grading import Grade, grade


def record(
    pid: str, reference: str | None, answers: list[str | None],
    scores: list[float | None] | None = None, grades: list[Grade] | None = None,
) -> ProblemRecord:
    grades = grades or [grade(a, reference) for a in answers]
    scores = scores or [None] * len(answers)
    candidates = tuple(
        CandidateRecord(index=i, answer=a, grade=g, score=s, num_tokens=1, finish_reason="stop",
                        text="")
        for i, (a, g, s) in enumerate(zip(answers, grades, scores))
    )
    answer = answers[0] if answers else None
    return ProblemRecord(
        id=pid, index=0, question="q", reference=reference, answer=answer,
        grade=grade(answer, reference), selected_index=0 if answers else None,
        candidates=candidates, usage={}, wall_seconds=1.0, budget_exhausted=False, exhausted_by=None, details={},
    )


# pass_rates

def test_pass_rates_pool_every_runs_candidates() -> None:
    first = [record("a", "4", ["4", "5"]), record("b", "7", ["1"])]
    second = [record("a", "4", ["4", "4", "4"]), record("b", "7", ["7", "1", "1"])]
    assert pass_rates([first, second]) == {"a": 4 / 5, "b": 1 / 4}  # pooled, not a mean of rates


def test_unknown_grades_and_problems_without_graded_candidates_are_left_out() -> None:
    mixed = record("a", "4", ["4", "?", "5"],
                   grades=[Grade.CORRECT, Grade.UNKNOWN, Grade.INCORRECT])
    no_reference = record("b", None, ["4", "4"])
    failed = record("c", "2", [])
    assert pass_rates([[mixed, no_reference, failed]]) == {"a": 0.5}
    assert pass_rates([]) == {}


# oracle_bins

def spread(rates: list[float]) -> dict[str, float]:
    return {chr(ord("a") + i): rate for i, rate in enumerate(rates)}


@pytest.mark.parametrize(
    ("rates", "bins"),
    [
        ([0.9, 0.8, 0.6, 0.5, 0.2, 0.1], "eemmhh"),
        ([0.1, 0.9, 0.5], "hem"),  # by rate, not by position
        ([1, 1, 1, 1, 0.5, 0], "eeeehh"),  # equal rates together: bins uneven
        ([1, 0, 0, 0, 0], "ehhhh"),  # the unsolved problems span the middle third: hard
        ([1, 1, 1, 1, 0], "eeeeh"),
        ([1, 0.5, 0.5, 0.5, 0.5, 0], "emmmmh"),  # a middle group as far from both ends
        ([0.3, 0.3, 0.3], "mmm"),
        ([0.7], "m"),
        ([0.7, 0.2], "eh"),
        ([0.5, 0.5], "mm"),
        ([], ""),
    ],
    ids=["tertiles", "unordered", "ties-together", "many-unsolved", "many-solved", "middle-tie",
         "all-equal", "one", "two", "two-equal", "none"],
)
def test_oracle_bins(rates: list[float], bins: str) -> None:
    full = {"e": "easy", "m": "medium", "h": "hard"}
    assert oracle_bins(spread(rates)) == {p: full[b] for p, b in zip(spread(rates), bins)}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), max_size=15))
def test_a_problem_that_passes_more_often_is_never_in_a_harder_bin(rates: list[float]) -> None:
    named = spread(rates)
    hardness = {p: BUCKETS.index(b) for p, b in oracle_bins(named).items()}
    for p, q in itertools.product(named, repeat=2):
        if named[p] >= named[q]:
            assert hardness[p] <= hardness[q]  # equal rates: the same bin both ways


@given(st.integers(1, 5).flatmap(
    lambda k: st.lists(st.floats(0, 1), min_size=3 * k, max_size=3 * k, unique=True)))
def test_distinct_rates_split_into_equal_thirds(rates: list[float]) -> None:
    bins = list(oracle_bins(spread(rates)).values())
    assert [bins.count(b) for b in BUCKETS] == [len(rates) // 3] * 3


# probe_features

def test_probe_features_read_agreement_and_mean_score() -> None:
    features = probe_features([
        record("a", "4", ["4", "4.0", "5", None], scores=[0.2, None, 0.6, None]),
        record("b", "4", ["3", "3"]),
        record("c", "4", []),
    ])
    assert features == {
        "a": ProbeFeatures(agreement=0.5, score=pytest.approx(0.4)),
        "b": ProbeFeatures(agreement=1.0, score=None),
        "c": ProbeFeatures(agreement=0.0, score=None),
    }


# fit_thresholds

def test_thresholds_that_separate_the_bins_are_found() -> None:
    feature = spread([0.9, 0.8, 0.6, 0.5, 0.2, 0.1])
    bins = dict(zip(feature, ["easy", "easy", "medium", "medium", "hard", "hard"]))
    thresholds, share = fit_thresholds(feature, bins)
    assert share == 1.0
    assert (thresholds.easy_at, thresholds.hard_below) == (pytest.approx(0.7), pytest.approx(0.35))
    assert {p: thresholds.bucket(v) for p, v in feature.items()} == bins


def test_features_are_clipped_and_ties_go_to_the_widest_medium_band() -> None:
    thresholds, share = fit_thresholds({"a": 1.4, "b": -0.3}, {"a": "easy", "b": "hard"})
    assert (thresholds, share) == (Thresholds(easy_at=1.0, hard_below=0.5), 1.0)


@pytest.mark.parametrize(
    ("feature", "bins", "share"),
    [
        ([0.5, 0.5, 0.5], ["easy", "medium", "hard"], 1 / 3),  # one value cannot tell three bins
        ([0.1, 0.9], ["easy", "hard"], 1 / 2),  # the feature points the wrong way
        ([0.1, 0.5, 0.9], ["medium", "hard", "easy"], 2 / 3),
    ],
    ids=["constant", "reversed", "one-out-of-place"],
)
def test_a_feature_that_cannot_separate_gets_a_lower_share(
    feature: list[float], bins: list[str], share: float
) -> None:
    named = spread(feature)
    assert fit_thresholds(named, dict(zip(named, bins)))[1] == pytest.approx(share)


def brute_force(feature: dict[str, float], bins: dict[str, str]) -> tuple[float, float, int]:
    """Every cut pair tried by hand: the best (easy_at, hard_below, problems agreeing), ties
    broken as documented."""
    values = sorted({min(max(v, 0.0), 1.0) for v in feature.values()})
    cuts = sorted({0.0, 1.0, *((a + b) / 2 for a, b in itertools.pairwise(values))})
    best = None
    for easy_at, hard_below in itertools.product(reversed(cuts), cuts):
        if easy_at < hard_below:
            continue
        t = Thresholds(easy_at=easy_at, hard_below=hard_below)
        agree = sum(t.bucket(min(max(v, 0.0), 1.0)) == bins[p] for p, v in feature.items())
        if best is None or agree > best[2]:
            best = (easy_at, hard_below, agree)
    return best


@settings(max_examples=200, deadline=None)
@given(st.lists(
    st.tuples(st.floats(-0.5, 1.5).map(lambda v: round(v, 2)), st.sampled_from(BUCKETS)),
    min_size=1, max_size=12,
))
def test_the_fit_is_the_best_of_every_cut_pair(problems: list[tuple[float, str]]) -> None:
    feature = spread([v for v, _ in problems])
    bins = dict(zip(feature, (b for _, b in problems)))
    thresholds, share = fit_thresholds(feature, bins)
    easy_at, hard_below, agree = brute_force(feature, bins)
    assert share == agree / len(problems)
    assert (thresholds.easy_at, thresholds.hard_below) == (easy_at, hard_below)


def test_only_problems_with_both_a_feature_and_a_bin_count() -> None:
    feature = {"a": 0.9, "b": 0.1, "x": 0.5}
    thresholds, share = fit_thresholds(feature, {"a": "easy", "b": "hard", "y": "medium"})
    assert share == 1.0 and thresholds.bucket(0.9) == "easy" and thresholds.bucket(0.1) == "hard"


@pytest.mark.parametrize(
    ("feature", "bins", "message"),
    [
        ({"a": 0.5}, {"a": "tricky"},
         r"bins must be among \['easy', 'medium', 'hard'\], got \['tricky'\]"),
        ({"a": 0.5}, {"b": "easy"}, "needs a problem with a feature and a bin, got none"),
        ({"a": math.nan}, {"a": "easy"}, "feature of problem 'a' must be a number, got nan"),
    ],
    ids=["bad-bin", "no-overlap", "nan"],
)
def test_bad_input_is_one_clear_error(
    feature: dict[str, float], bins: dict[str, str], message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        fit_thresholds(feature, bins)


# accuracy_by_bin

def test_accuracy_within_each_bin_and_the_overall_one_for_an_empty_bin() -> None:
    run = [record("a", "4", ["4"]), record("b", "4", ["5"]), record("c", "1", ["1"]),
           record("d", None, ["3"]), record("e", "2", ["2"])]
    bins = {"a": "easy", "b": "easy", "c": "hard", "d": "hard"}  # d has no reference, e no bin
    assert accuracy_by_bin(run, bins) == {"easy": 0.5, "medium": 0.75, "hard": 1.0}


def test_accuracy_by_bin_needs_a_graded_problem() -> None:
    with pytest.raises(BadRequestError, match="needs a graded problem"):
        accuracy_by_bin([record("d", None, ["3"])], {"d": "easy"})
