"""What a study found: its trials, the Pareto fronts overall and per difficulty bin, and the
profile that strategy 'auto' reads.

Difficulty is Snell et al.'s oracle difficulty: the model's own pass rate on each tuning
problem, pooled over every candidate of every trial, cut into tertiles. 'auto' cannot know it
for a new question, so the profile also carries a predictor: the feature of the probe run
(the agreement of its answers, or their mean verifier score) whose fitted thresholds give the
tuning problems' bins best. The profile's accuracies are per bucket as that predictor calls
it, which is all 'auto' knows when it chooses, and its points are the union of those buckets'
fronts: a point off every front is never what 'auto' should choose.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ponder.config import compose
from ponder.errors import BadRequestError
from ponder.experiments.bootstrap import bootstrap_mean
from ponder.experiments.records import ProblemRecord, RecordLog
from ponder.strategies.profile import BUCKETS, Profile, ProfilePoint, Thresholds, save_profile
from ponder.tuning.difficulty import (
    accuracy_by_bin, fit_thresholds, oracle_bins, pass_rates, probe_features,
)
from ponder.tuning.pareto import TrialPoint, front_table, pareto_front
from ponder.tuning.plots import plot_fronts
from ponder.tuning.study import StudyDir
from ponder.verifiers.grading import Grade

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialRun:
    point: TrialPoint
    records: list[ProblemRecord]


def trial_runs(study: StudyDir) -> list[TrialRun]:
    """Every trial folder whose run is complete (a trial cut short is left out, and said)."""
    runs = []
    folders = sorted(f for f in study.trials_dir.iterdir() if f.is_dir()) if study.trials_dir.exists() else []
    for folder in folders:
        summary_file = folder / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        if not summary.get("complete"):
            log.warning("trial %s is not complete; left out of the results", folder.name)
            continue
        records = RecordLog(folder / "records.jsonl").read()
        graded = [1.0 if r.grade == Grade.CORRECT else 0.0 for r in records if r.grade != Grade.UNKNOWN]
        interval = bootstrap_mean(graded)
        runs.append(TrialRun(TrialPoint(
            label=_label(folder), strategy=summary["config"]["strategy"],
            accuracy=summary["accuracy"],
            generated_tokens=summary["tokens_per_problem"]["generated_tokens"],
            wall_seconds=summary["wall_seconds_per_problem"], folder=folder,
            accuracy_interval=(interval.low, interval.high),
        ), records))
    return runs


def _label(folder: Path) -> str:
    """'best_of_n(n=8, verifier=self_eval)', from the trial's overrides."""
    overrides_file = folder / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    pairs = dict(o.split("=", 1) for o in overrides if "=" in o)
    arm = pairs.get("arm", folder.name)
    values = [f"{k.removeprefix(f'++{arm}.')}={v}" for k, v in pairs.items()
              if k.startswith(f"++{arm}.")]
    return f"{arm}({', '.join(values)})"


def write_results(study: StudyDir, config: Mapping[str, Any], profile_path: Path | None,
                  probe_samples: int) -> str:
    """Write front.txt, trials.csv, fronts.png and the profile; the text to print."""
    runs = trial_runs(study)
    if not runs:
        raise BadRequestError(f"tune: {study.trials_dir} holds no complete trial; see the trials' "
                              "run.log for what failed")
    points = [run.point for run in runs]
    bins = oracle_bins(pass_rates([run.records for run in runs]))
    per_bin = {bucket: [_within(run, bins, bucket) for run in runs] for bucket in BUCKETS}
    token_front, time_front = pareto_front(points), pareto_front(points, cost="wall_seconds")

    table = front_table(points, token_front, time_front)
    (study.path / "front.txt").write_text(table + "\n")
    _write_csv(study.path / "trials.csv", runs, per_bin, token_front, time_front)
    plot_fronts(points, per_bin, study.path / "fronts.png")

    probe = RecordLog(study.probe_dir / "records.jsonl").read()
    profile = make_profile(runs, bins, probe, config, probe_samples)
    target = profile_path or study.path / "profile.yaml"
    save_profile(profile, target, header=(
        f"Made by `ponder tune` from the study in {study.path}.\n"
        f"Use it with `strategy=auto strategy.profile={target}` or `ponder serve --profiles {target}`."))
    sizes = {b: sum(v == b for v in bins.values()) for b in BUCKETS}
    fits = ", ".join(f"{name} {share:.2f}" for name, share in profile.predictor_fit.items())
    return "\n".join([
        table, "",
        "difficulty bins (the model's pass rate, tertiles): "
        + ", ".join(f"{b} {sizes[b]}" for b in BUCKETS),
        f"difficulty predictor: {profile.predictor} (share of problems whose bin it predicts: {fits})",
        f"wrote {study.path / 'front.txt'}, trials.csv, fronts.png and the profile {target} "
        f"({len(profile.points)} strategies)",
    ])


def _within(run: TrialRun, bins: Mapping[str, str], bucket: str) -> TrialPoint:
    """The trial's point with its accuracy within ``bucket``."""
    p = run.point
    return TrialPoint(label=p.label, strategy=p.strategy, accuracy=accuracy_by_bin(run.records, bins)[bucket],
                      generated_tokens=p.generated_tokens, wall_seconds=p.wall_seconds, folder=p.folder)


def make_profile(runs: Sequence[TrialRun], bins: Mapping[str, str], probe: Sequence[ProblemRecord],
             config: Mapping[str, Any], probe_samples: int) -> Profile:
    """The profile: the predictor that fits the oracle bins best, and the points on the front
    of some bucket *as that predictor calls it*, with their accuracy per predicted bucket,
    since 'auto' knows only the prediction when it chooses (a point that is best on the
    oracle's easy problems may not be on the problems the probe calls easy)."""
    features = probe_features(probe)
    fits = {}
    values_of = {}
    for name in ("agreement", "score"):
        values = {i: getattr(f, name) for i, f in features.items() if getattr(f, name) is not None}
        if values and set(values) >= set(bins):
            fits[name], values_of[name] = fit_thresholds(values, bins), values
    if not fits:
        raise BadRequestError("tune: the probe run gave no feature for every tuning problem")
    predictor = max(fits, key=lambda name: (fits[name][1], name == "agreement"))
    thresholds = fits[predictor][0]
    predicted = {problem: thresholds.bucket(min(max(value, 0.0), 1.0))
                 for problem, value in values_of[predictor].items() if problem in bins}
    chosen = {p.folder for bucket in BUCKETS
              for p in pareto_front([_within(run, predicted, bucket) for run in runs])}
    points = sorted((run for run in runs if run.point.folder in chosen),
                    key=lambda run: run.point.generated_tokens)
    tune = config["tune"]
    dataset = config["dataset"].get("source")
    return Profile(
        source=f"ponder tune: {len(runs)} trials on {len(bins)} problems of {dataset}",
        model=str(config["backend"].get("model")),
        probe_samples=probe_samples, probe_tokens=tune["probe"]["tokens"],
        probe_format=tune["probe"].get("format", "words"),
        probe_verifier=(compose([f"verifier@strategy.verifier={tune['probe']['verifier']}",
                                 "strategy=best_of_n"], config_name="run")["strategy"]["verifier"]
                        if predictor == "score" else None),
        predictor=predictor,  # type: ignore[arg-type]
        predictor_fit={name: round(share, 3) for name, (_, share) in fits.items()},
        thresholds=Thresholds(easy_at=round(thresholds.easy_at, 3),
                              hard_below=round(thresholds.hard_below, 3)),
        token_price=tune["token_price"],
        points=tuple(ProfilePoint(
            strategy=_portable(run.point.strategy), generated_tokens=round(run.point.generated_tokens, 1),
            accuracy={b: round(a, 3) for b, a in accuracy_by_bin(run.records, predicted).items()},
        ) for run in points),
    )


def _portable(strategy: Mapping[str, Any]) -> dict[str, Any]:
    """``strategy`` without the program sandbox's interpreter where it is the one this process
    runs (the default, which every machine derives for itself): a profile made in one checkout
    must not send another's programs to this checkout's virtual environment."""
    program = strategy.get("program")
    sandbox = program.get("sandbox") if isinstance(program, Mapping) else None
    if not isinstance(sandbox, Mapping) or sandbox.get("python") != sys.executable:
        return dict(strategy)
    kept = {key: value for key, value in sandbox.items() if key != "python"}
    return {**strategy, "program": {**program, "sandbox": kept}}


def _write_csv(path: Path, runs: Sequence[TrialRun], per_bin: Mapping[str, Sequence[TrialPoint]],
               token_front: Sequence[TrialPoint], time_front: Sequence[TrialPoint]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "label", "accuracy", "accuracy_low", "accuracy_high",
                         "generated_tokens", "wall_seconds", *(f"accuracy_{b}" for b in BUCKETS),
                         "on_token_front", "on_time_front"])
        for i, run in enumerate(runs):
            p = run.point
            low, high = p.accuracy_interval or (None, None)
            writer.writerow([p.folder.name if p.folder else "", p.label, p.accuracy, low, high,
                             p.generated_tokens, p.wall_seconds,
                             *(per_bin[b][i].accuracy for b in BUCKETS),
                             p in token_front, p in time_front])
