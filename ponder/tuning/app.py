"""``ponder tune``: a Hydra app over ``configs/tune.yaml`` that searches strategy configs for the
most accuracy at the fewest generated tokens.

    ponder tune dataset=arithmetic dataset.size=24 tune.trials=16 tune.study=runs/tune/arith
    ponder tune space=arithmetic hydra/launcher=joblib hydra.launcher.n_jobs=2 tune.jobs=2

Before any model loads, everything is checked: the search space (every arm composes and
builds at the ends of its ranges), the dataset (every problem has a reference: a trial's
accuracy is its objective), the run's keys and the study folder (another study's is refused).
Then, in order:

1. the difficulty probe runs over the tuning split (``STUDY/probe``: a few short answers per
   problem, scored by a cheap verifier), so the profile can say how to tell a new question's
   difficulty;
2. Hydra's Optuna sweeper runs the trials that the study still lacks; each trial is a
   ``ponder run`` of one config in its own folder under ``STUDY/trials`` and returns
   (accuracy, mean generated tokens); the launcher decides where trials run;
3. the study's fronts, per difficulty bin too, and the profile are written (``results``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from ponder.config import compose, config_dir, settled
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError
from ponder.experiments.app import (
    HOST, RunConfig, call_hydra_app, experiment, in_launching_process, let_workers_spawn,
)
from ponder.experiments.datasets import dataset_config, load_problems
from ponder.tuning.results import write_results
from ponder.tuning.space import Space, resolve_space, trial_values
from ponder.tuning.study import StudyDir

log = logging.getLogger(__name__)


class ProbeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int = Field(4, ge=2, le=16)
    tokens: int = Field(128, ge=8)
    verifier: str = Field("self_certainty", description="A configs/verifier/ name.")
    format: Literal["words", "program"] = "words"


class TuneSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    study: Path
    trials: PositiveInt
    jobs: PositiveInt = 1
    seed: int = 0
    profile: Path | None = None
    token_price: float = Field(0.5, ge=0)
    probe: ProbeSettings = ProbeSettings()


def run_settings(settings: Mapping[str, Any], strategy: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ponder run`` part of a tune config, with ``strategy``."""
    return {**{key: settings[key] for key in RunConfig.model_fields if key in settings},
            "strategy": dict(strategy)}


@hydra.main(config_path=str(config_dir()), config_name="tune", version_base=None)
def _trial(cfg: DictConfig) -> list[float]:
    """One trial: the arm's config with the sampled values, run on the tuning split. What it
    raises fails this trial only (the sweeper records it and goes on)."""
    settings = settled(cfg)
    study = StudyDir(settings["tune"]["study"])
    space = Space.model_validate_json(study.space_file.read_text())
    label = settings["arm"]
    strategy = space.arms[label].trial_strategy(trial_values(settings, label))
    folder = Path(HydraConfig.get().runtime.output_dir)
    in_worker = not in_launching_process()
    if in_worker:
        let_workers_spawn()
    summary = experiment(run_settings(settings, strategy), folder, HOST, keep_engine=not in_worker)
    if summary is None or summary.accuracy is None:
        raise BadRequestError(f"trial {folder.name}: no graded problem, so no accuracy")
    return [summary.accuracy, summary.tokens_per_problem["generated_tokens"]]


def probe_strategy(probe: ProbeSettings) -> dict[str, Any]:
    """Best-of-N over the probe's samples: its candidates carry their answers (for agreement)
    and their verifier scores (for the score feature)."""
    return compose(["strategy=best_of_n", f"verifier@strategy.verifier={probe.verifier}",
                    f"strategy.n={probe.samples}", f"strategy.sampling.max_tokens={probe.tokens}",
                    f"strategy.format={probe.format}"],
                   config_name="run")["strategy"]


def _check_references(dataset: Mapping[str, Any]) -> int:
    problems = load_problems(dataset_config(dataset))
    missing = [p.id for p in problems if p.reference is None]
    if missing:
        raise BadRequestError(
            f"dataset: {len(missing)} of {len(problems)} problems have no reference answer (e.g. "
            f"{missing[0]!r}); tuning measures accuracy, so every problem needs one")
    return len(problems)


def _parallel_launcher(overrides: Sequence[str]) -> bool:
    return any(o.startswith("hydra/launcher=") and o != "hydra/launcher=basic" for o in overrides)


def tune(argv: Sequence[str]) -> int:
    """Check, probe, run the missing trials, write the results; the exit status."""
    overrides = [a for a in argv if not a.startswith("-")]
    config = compose(overrides, config_name="tune")
    try:
        settings = TuneSettings.model_validate(config["tune"])
        RunConfig.model_validate(run_settings(config, config["strategy"]))
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("tune", exc)) from None
    space = resolve_space(config.get("space"))
    problems = _check_references(config["dataset"])
    study = StudyDir(settings.study)
    identity = {key: config.get(key) for key in ("space", "dataset", "backend", "budget", "seed")}
    resumed = study.start(identity, space.model_dump_json(indent=2))
    done = study.finished_trials()
    print(f"study {study.path}: {'resumed, ' if resumed else ''}{done} of {settings.trials} "
          f"trials done; {len(space.arms)} arms, {problems} problems", file=sys.stderr)

    probe = run_settings(config, probe_strategy(settings.probe))
    keep = not _parallel_launcher(overrides)  # the sequential trials reuse the probe's engine
    try:
        experiment(probe, study.probe_dir, HOST, keep_engine=keep)
    finally:
        if not keep or done >= settings.trials:
            HOST.close()
    if done < settings.trials:
        status = call_hydra_app(_trial, "ponder tune", [
            "-m", *argv, f"tune.study={study.path}", f"hydra.sweeper.storage={study.storage}",
            f"hydra.sweeper.n_trials={settings.trials - done}",
        ], HOST)
        if status != 0:
            return status
    print(write_results(study, config, settings.profile, settings.probe.samples))
    return 0


def main(argv: Sequence[str]) -> int:
    """``ponder tune`` with Hydra's arguments (overrides; ``--cfg job`` shows the config)."""
    if any(a in ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info") for a in argv):
        return call_hydra_app(_trial, "ponder tune", list(argv), HOST)
    return tune(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
