"""The profile a study writes holds each point's accuracy per bucket as the probe's predictor
calls the tuning problems, not per oracle bin: 'auto' chooses knowing only the prediction."""

from __future__ import annotations

from pathlib import Path

from ponder.strategies.profile import agreement
from ponder.tuning.difficulty import accuracy_by_bin, oracle_bins, pass_rates
from ponder.tuning.pareto import TrialPoint
from ponder.tuning.results import TrialRun, make_profile
from tests.unit.tuning.test_difficulty_fit import record

PROBLEMS = "abcdef"
# Which problems each trial answers right: a and b are easy (both trials), c and d medium
# (the dear one), e and f hard (neither).
RIGHT = {"cheap": "ab", "dear": "abcd"}
# The probe is fooled twice: it agrees on f (confidently wrong) and scatters on b.
PROBE = {"a": ["4"] * 4, "b": ["4", "1", "2", "3"], "c": ["4", "4", "1", "2"],
         "d": ["4", "4", "1", "2"], "e": ["1", "2", "3", "4"], "f": ["1"] * 4}
CONFIG = {"tune": {"probe": {"tokens": 128, "verifier": "self_certainty"}, "token_price": 0.25},
          "dataset": {"source": "hand-made"}, "backend": {"model": "m"}}


def trial(name: str, tokens: float) -> TrialRun:
    records = [record(p, "4", ["4" if p in RIGHT[name] else "5"]) for p in PROBLEMS]
    accuracy = len(RIGHT[name]) / len(PROBLEMS)
    point = TrialPoint(label=name, strategy={"name": "self_consistency", "n": int(tokens)},
                       accuracy=accuracy, generated_tokens=tokens, wall_seconds=1.0,
                       folder=Path(name))
    return TrialRun(point, records)


def test_point_accuracies_are_per_predicted_bucket() -> None:
    runs = [trial("cheap", 1), trial("dear", 8)]
    probe = [record(p, "4", PROBE[p]) for p in PROBLEMS]
    oracle = oracle_bins(pass_rates([run.records for run in runs]))
    assert oracle == {"a": "easy", "b": "easy", "c": "medium", "d": "medium", "e": "hard", "f": "hard"}

    profile = make_profile(runs, oracle, probe, CONFIG, probe_samples=4)
    called = {p: profile.thresholds.bucket(agreement(PROBE[p])) for p in PROBLEMS}
    assert profile.predictor == "agreement" and called != oracle
    assert profile.token_price == 0.25 and profile.model == "m"
    for run, point in zip(runs, profile.points, strict=True):
        assert point.accuracy == accuracy_by_bin(run.records, called)
        assert point.accuracy != accuracy_by_bin(run.records, oracle)
