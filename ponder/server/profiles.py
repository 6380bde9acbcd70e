"""Profiles for strategy 'auto' (``ponder.strategies.profile``) made from experiment runs.

Difficulty is what the policy can see at request time: the agreement among the first few
sampled answers to the problem (see ``ponder.strategies.auto``). ``profile_from_runs`` makes a
profile from a sweep (``ponder run -m strategy.n=1,4,8``) and records the runs' model: the
problems are bucketed by the agreement among the first ``probe_samples`` candidates of the
run with the most candidates per problem, and each run's accuracy is measured within each
bucket::

    python -m ponder.server.profiles runs/sweep/* --out configs/profiles/embedded.yaml
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml

from ponder.errors import BadRequestError
from ponder.experiments.records import ProblemRecord, RecordLog
from ponder.strategies.profile import (
    BUCKETS,
    Profile,
    ProfilePoint,
    Thresholds,
    agreement,
    save_profile,
)
from ponder.verifiers.grading import Grade


def profile_from_runs(run_dirs: Sequence[Path], probe_samples: int = 4,
                      thresholds: Thresholds = Thresholds()) -> Profile:
    """One point per run folder (its config.yaml's strategy, its records' accuracy per bucket)."""
    runs = [(yaml.safe_load((d / "config.yaml").read_text()), RecordLog(d / "records.jsonl").read())
            for d in run_dirs]
    if not runs or not all(records for _, records in runs):
        raise BadRequestError("every run folder needs records.jsonl with at least one record")
    models = {(config.get("backend") or {}).get("model") for config, _ in runs}
    if len(models) > 1:
        raise BadRequestError(f"the runs were made with different models "
                              f"({', '.join(sorted(map(str, models)))}): a profile is one model's")
    widest = max((records for _, records in runs), key=lambda rs: min(len(r.candidates) for r in rs))
    bucket_of = {r.id: thresholds.bucket(agreement([c.answer for c in r.candidates[:probe_samples]]))
                 for r in widest}
    points = [
        ProfilePoint(
            strategy=config["strategy"],
            generated_tokens=round(sum(r.usage.get("generated_tokens", 0) for r in records) / len(records), 1),
            accuracy={bucket: _accuracy([r for r in records if bucket_of.get(r.id) == bucket] or records)
                      for bucket in BUCKETS},  # an empty bucket gets the run's overall accuracy
        )
        for config, records in runs
    ]
    sizes = Counter(bucket_of.values())
    source = (f"{len(widest)} problems ({', '.join(f'{b}: {sizes[b]}' for b in BUCKETS)}), "
              f"runs: {', '.join(d.name for d in run_dirs)}")
    return Profile(source=source, model=models.pop(), probe_samples=probe_samples, thresholds=thresholds,
                   points=tuple(points))


def _accuracy(records: Sequence[ProblemRecord]) -> float:
    graded = [r for r in records if r.grade != Grade.UNKNOWN]
    return round(sum(r.grade == Grade.CORRECT for r in graded) / len(graded), 3) if graded else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make an 'auto' profile from experiment runs.")
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--probe-samples", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    profile = profile_from_runs(args.run_dirs, args.probe_samples)
    save_profile(profile, args.out)
    print(f"wrote {args.out}: {profile.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
