"""How hard each tuning problem is, and how well a cheap probe tells it beforehand.

The oracle difficulty is the model's own pass rate on a problem (Snell et al., 2024), known
only once every trial has run; strategy 'auto' must guess the bucket from a probe instead.
These functions bin the pass rates, read the probe's features, fit the thresholds that turn
a feature into the oracle's bucket, and split a run's accuracy by bucket, for the profile.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ponder.errors import BadRequestError
from ponder.experiments.records import ProblemRecord
from ponder.strategies.profile import BUCKETS, Thresholds, agreement
from ponder.verifiers.grading import Grade


def pass_rates(runs: Sequence[Sequence[ProblemRecord]]) -> dict[str, float]:
    """Per problem id, the share of correct candidates among every run's graded candidates
    together; candidates graded unknown (no reference) are left out, and so is a problem
    with no graded candidate."""
    correct: dict[str, int] = defaultdict(int)
    graded: dict[str, int] = defaultdict(int)
    for records in runs:
        for record in records:
            for candidate in record.candidates:
                if candidate.grade != Grade.UNKNOWN:
                    graded[record.id] += 1
                    correct[record.id] += candidate.grade == Grade.CORRECT
    return {problem: correct[problem] / count for problem, count in graded.items()}


def oracle_bins(rates: Mapping[str, float]) -> dict[str, str]:
    """Tertiles of the pass rate: the problems that pass most often are easy, the least often hard.

    Equal rates always share a bin, so bins may be uneven: a problem is easy when fewer than
    a third of the problems pass more often, hard when fewer than a third pass less often,
    medium when neither. When both hold (one group of equal rates spans the middle third,
    such as many problems no candidate solved), the group goes to the side with fewer problems
    beyond it: easy if fewer pass more often than less often, hard if the reverse, medium if
    as many (so one problem, or two equal ones, are medium; two unequal ones easy and hard).
    """
    ordered = sorted(rates.values())
    third = len(ordered) / 3
    bins = {}
    for problem, rate in rates.items():
        lower = bisect.bisect_left(ordered, rate)
        higher = len(ordered) - bisect.bisect_right(ordered, rate)
        easy, hard = higher < third, lower < third
        if easy and hard:
            easy, hard = higher < lower, lower < higher
        bins[problem] = "easy" if easy else "hard" if hard else "medium"
    return bins


@dataclass(frozen=True)
class ProbeFeatures:
    """What a probe tells about a problem before any strategy runs on it (higher: easier)."""

    agreement: float
    """Share of the probe answers equivalent to the most common one (0 when none answered)."""
    score: float | None
    """Mean verifier score of the probe answers; None when none was scored."""


def probe_features(records: Sequence[ProblemRecord]) -> dict[str, ProbeFeatures]:
    """Per problem id, the features of a probe run's candidates on it."""
    features = {}
    for record in records:
        scores = [c.score for c in record.candidates if c.score is not None]
        features[record.id] = ProbeFeatures(
            agreement=agreement([c.answer for c in record.candidates]),
            score=sum(scores) / len(scores) if scores else None,
        )
    return features


def fit_thresholds(
    feature: Mapping[str, float], bins: Mapping[str, str]
) -> tuple[Thresholds, float]:
    """The thresholds whose buckets of ``feature`` agree with ``bins`` on the most problems,
    and the share they agree on, over the problems both name.

    Features are clipped into [0, 1] first, the range of every ponder verifier's score and
    of agreement. The cut points tried are 0, 1 and the midpoints between neighbouring
    observed values, for both thresholds (``easy_at >= hard_below``). Among equally good
    thresholds the largest ``easy_at`` wins, then the smallest ``hard_below``: the widest
    medium band, so a feature that cannot tell calls a problem medium.
    """
    unknown = sorted(set(bins.values()) - set(BUCKETS))
    if unknown:
        raise BadRequestError(f"bins must be among {list(BUCKETS)}, got {unknown}")
    problems = [problem for problem in feature if problem in bins]
    if not problems:
        raise BadRequestError("fit_thresholds needs a problem with a feature and a bin, got none")
    values = np.array([feature[p] for p in problems], dtype=float)
    if not np.isfinite(values).all():
        bad = next(p for p, v in zip(problems, values) if not math.isfinite(v))
        raise BadRequestError(f"feature of problem {bad!r} must be a number, got {feature[bad]}")
    values = np.clip(values, 0.0, 1.0)
    order = np.argsort(values, kind="stable")
    values = values[order]
    truth = np.array([bins[problems[i]] for i in order])

    distinct = np.unique(values)
    cuts = np.unique(np.concatenate(([0.0, 1.0], (distinct[:-1] + distinct[1:]) / 2)))
    below = np.searchsorted(values, cuts, side="left")  # problems under each cut
    # first[b][k]: how many of the k problems with the smallest features are in bin b.
    first = {b: np.concatenate(([0], np.cumsum(truth == b))) for b in BUCKETS}
    h = below[None, :]  # hard_below along columns: the h smallest are called hard
    e = below[:, None]  # easy_at along rows: all but the e smallest are called easy
    agree = (first["hard"][h] + first["medium"][e] - first["medium"][h]
             + first["easy"][-1] - first["easy"][e])
    allowed = cuts[:, None] >= cuts[None, :]
    agree = np.where(allowed, agree, -1)
    # Rows run from the largest easy_at down, columns from the smallest hard_below up, so
    # the first best in that order is the documented tie-break.
    flipped = agree[::-1]
    row, column = np.unravel_index(int(np.argmax(flipped)), flipped.shape)
    thresholds = Thresholds(easy_at=float(cuts[::-1][row]), hard_below=float(cuts[column]))
    return thresholds, float(flipped[row, column]) / len(problems)


def accuracy_by_bin(records: Sequence[ProblemRecord], bins: Mapping[str, str]) -> dict[str, float]:
    """A run's accuracy on the graded problems of each bucket of ``bins``; a bucket without
    such a problem gets the run's accuracy on all its graded problems, the best guess there
    is (a problem ``bins`` does not name counts only there)."""
    graded = [record for record in records if record.grade != Grade.UNKNOWN]
    if not graded:
        raise BadRequestError("accuracy_by_bin needs a graded problem (with a reference), got none")
    overall = _accuracy(graded)
    by_bin = {
        bucket: [record for record in graded if bins.get(record.id) == bucket] for bucket in BUCKETS
    }
    return {bucket: _accuracy(found) if found else overall for bucket, found in by_bin.items()}


def _accuracy(records: Sequence[ProblemRecord]) -> float:
    return sum(record.grade == Grade.CORRECT for record in records) / len(records)
