"""Accuracy-vs-tokens profiles for the 'auto' policy, and how to make them from experiment runs.

A profile is a list of points, one per strategy config: its mean generated tokens per problem
and its accuracy on easy, medium and hard problems. Difficulty is what the policy can see at
request time: the agreement among the first few sampled answers to the problem (see
``ponder.server.auto``). ``profile_from_runs`` computes it from a sweep (``ponder run -m
strategy.n=1,4,8``): the problems are bucketed by the agreement among the first
``probe_samples`` candidates of the run with the most candidates per problem, and each run's
accuracy is measured within each bucket::

    python -m ponder.server.profiles runs/sweep/* --out configs/profiles/embedded.yaml
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ponder.config import config_dir
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError
from ponder.experiments.records import ProblemRecord, RecordLog
from ponder.verifiers.equivalence import group_answers
from ponder.verifiers.grading import Grade

BUCKETS = ("easy", "medium", "hard")


class Thresholds(BaseModel):
    """Agreement (share of probe answers that match the most common one) to difficulty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    easy_at: float = Field(0.75, gt=0, le=1, description="Agreement at or above: easy.")
    hard_below: float = Field(0.5, gt=0, le=1, description="Agreement below: hard.")

    def bucket(self, agreement: float) -> str:
        if agreement >= self.easy_at:
            return "easy"
        return "hard" if agreement < self.hard_below else "medium"


class ProfilePoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: dict[str, Any] = Field(description="A strategy config with its name.")
    generated_tokens: float = Field(ge=0, description="Mean generated tokens per problem.")
    accuracy: dict[str, float] = Field(description="Accuracy per difficulty bucket.")

    @field_validator("accuracy", mode="before")
    @classmethod
    def _every_bucket(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            return dict.fromkeys(BUCKETS, value)  # one number: the same in every bucket
        if isinstance(value, dict) and set(value) != set(BUCKETS):
            raise ValueError(f"accuracy needs exactly the buckets {list(BUCKETS)}, got {sorted(value)}")
        return value


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field("", description="How the profile was made.")
    probe_samples: int = Field(4, ge=2, le=16, description="Probe answers difficulty is read from.")
    probe_tokens: int = Field(128, ge=8, description="Most tokens per probe answer.")
    thresholds: Thresholds = Thresholds()
    points: tuple[ProfilePoint, ...] = Field(min_length=1)


def default_profile_path() -> Path:
    return config_dir() / "profiles" / "embedded.yaml"


def load_profile(path: Path | None = None) -> Profile:
    path = path or default_profile_path()
    try:
        data = yaml.safe_load(path.read_text())
        return Profile.model_validate(data)
    except OSError as exc:
        raise BadRequestError(f"profiles: cannot read {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(f"profiles ({path})", exc)) from None


def agreement(answers: Sequence[str | None]) -> float:
    """Share of ``answers`` equivalent to the most common one ("42" and "42.0" agree); a
    missing answer agrees with nothing. 0 when none answered."""
    groups = group_answers(answers)
    return max(len(g) for g in groups) / len(answers) if groups else 0.0


def profile_from_runs(run_dirs: Sequence[Path], probe_samples: int = 4,
                      thresholds: Thresholds = Thresholds()) -> Profile:
    """One point per run folder (its config.yaml's strategy, its records' accuracy per bucket)."""
    runs = [(yaml.safe_load((d / "config.yaml").read_text()), RecordLog(d / "records.jsonl").read())
            for d in run_dirs]
    if not runs or not all(records for _, records in runs):
        raise BadRequestError("every run folder needs records.jsonl with at least one record")
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
    return Profile(source=source, probe_samples=probe_samples, thresholds=thresholds, points=tuple(points))


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
    data = json.loads(profile.model_dump_json())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"wrote {args.out}: {profile.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
