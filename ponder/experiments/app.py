"""``ponder run``: the experiment app, a Hydra application over ``configs/run.yaml``.

    ponder run strategy=self_consistency strategy.n=8 dataset.size=50
    ponder run -m strategy.n=1,4,16 budget.generated_tokens=2000,8000
    ponder run -m strategy=self_consistency,best_of_n hydra/launcher=joblib   # parallel

Each job validates everything (config, strategy, budget, dataset, the run folder) before
any model loads, then solves the pending problems concurrently on one backend and writes
its folder (see ``rundir``). The job returns its accuracy, so Hydra's optimizing sweepers
(Optuna, Nevergrad) can tune a strategy too.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError
from tqdm import tqdm

from ponder.api import build_budget
from ponder.config import config_dir, settled
from ponder.core.registry import describe_validation_error
from ponder.errors import BackendError, BadRequestError, PonderError
from ponder.experiments.datasets import dataset_config, load_problems
from ponder.experiments.engines import EngineHost
from ponder.experiments.metrics import Summary, summarize
from ponder.experiments.provenance import versions
from ponder.experiments.rundir import RunDir
from ponder.experiments.runner import Progress, solve_problems
from ponder.graph.defaults import store_class_defaults
from ponder.strategies import strategies

log = logging.getLogger(__name__)

_BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
_LONGEST_NAME = 120
HOST = EngineHost()
"""This process's loop and engine, shared by the jobs Hydra runs in it."""


def run_name(overrides: str) -> str:
    """A folder name from Hydra's ``override_dirname``: 'defaults' when there are none, no
    slashes, and long ones shortened with a hash so they stay unique."""
    name = overrides.replace("/", "_") or "defaults"
    if len(name) > _LONGEST_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[:_LONGEST_NAME - 13]}-{digest}"
    return name


OmegaConf.register_new_resolver("ponder_run_name", run_name, replace=True)


class MetricsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    k: tuple[PositiveInt, ...] | None = Field(
        None, description="The k of pass@k, majority@k and weighted@k (None: 1, 2, 4, ... n)."
    )
    subsamples: int = Field(64, ge=1, description="Random k-subsets per problem for the votes.")


class RunConfig(BaseModel):
    """The run's own keys; the groups are validated by their builders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    concurrency: int = Field(16, ge=1)
    resume: bool = True
    progress: bool = True
    metrics: MetricsConfig = MetricsConfig()
    dataset: dict[str, Any]
    strategy: dict[str, Any]
    backend: dict[str, Any]
    budget: dict[str, Any] = Field(default_factory=dict)


def experiment(
    settings: dict[str, Any], folder: Path, host: EngineHost, *, keep_engine: bool
) -> Summary | None:
    """One run: validate, solve what is pending in ``folder``, write the summary; the summary
    (None when no problem has a record)."""
    try:
        config = RunConfig.model_validate(settings)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("run", exc)) from None
    strategy = strategies.build(config.strategy)
    strategy.check_backend(config.backend)
    budget = build_budget(config.budget)
    source = dataset_config(config.dataset)
    problems = load_problems(source)
    with RunDir(folder) as run:  # one job at a time in a folder, until its summary is written
        done = run.start(settings, resume=config.resume, problem_ids=[p.id for p in problems])
        found_versions = versions(config.backend)
        run.record_versions(found_versions)
        done_ids = {record.id for record in done}
        pending = [(i, p) for i, p in enumerate(problems) if p.id not in done_ids]
        log.info("%s: %d problems, %d done before, %d to solve with %s",
                 folder, len(problems), len(done), len(pending), strategy.name)

        async def solve() -> Progress:
            backend, reused = await host.backend(config.backend)
            log.info("engine: %s in process %d",
                     "reused from the previous job" if reused else "started", os.getpid())
            bar = tqdm(total=len(problems), initial=len(done), desc=strategy.name, unit="problem",
                       disable=not config.progress, file=sys.stderr, dynamic_ncols=True)
            try:
                return await solve_problems(
                    pending, strategy=strategy, backend=backend, budget=budget,
                    records=run.records, done=done, seed=config.seed,
                    concurrency=config.concurrency, bar=bar,
                )
            finally:
                bar.close()
                run.records.close()
                if not keep_engine:
                    await host.release()

        started = time.perf_counter()
        progress, summary = Progress(), None
        try:
            if pending:
                progress = host.run(solve())
        finally:  # also when interrupted: the summary covers the records written so far
            records = run.records.read()
            if records:
                summary = summarize(
                    records, ks=config.metrics.k, subsamples=config.metrics.subsamples,
                    seed=config.seed,
                )
                run.write_summary({
                    "dataset": source.label,
                    "strategy": strategy.name,
                    "complete": len(records) == len(problems),
                    "problems_total": len(problems),
                    **summary.model_dump(mode="json"),
                    "seconds_this_run": time.perf_counter() - started,
                    "solved_this_run": progress.solved,
                    "versions": found_versions,
                    "config": settings,
                })
                _log_summary(summary)
        if progress.failed:
            raise BackendError(
                f"{len(progress.failed)} problems failed in the backend "
                f"(e.g. {progress.failed[0]!r}); run the same command again to retry them"
            )
        return summary


def _log_summary(summary: Summary) -> None:
    def rounded(values: dict[int, float]) -> dict[int, float]:
        return {k: round(v, 3) for k, v in values.items()}

    accuracy = "n/a" if summary.accuracy is None else f"{summary.accuracy:.3f}"
    log.info(
        "accuracy %s (%d of %d problems with a reference answer correct), %.0f generated tokens "
        "per problem, pass@k %s, majority@k %s",
        accuracy, summary.correct, summary.graded, summary.tokens_per_problem["generated_tokens"],
        rounded(summary.pass_at_k), rounded(summary.majority_at_k),
    )


def in_launching_process() -> bool:
    """Whether this job runs in the ``ponder run`` process itself (a single run, or the basic
    launcher's sweep) rather than in a launcher's worker process (joblib, submitit, Ray)."""
    hydra_config = HydraConfig.get()
    return hydra_config.mode == RunMode.RUN or hydra_config.launcher._target_ == _BASIC_LAUNCHER


def let_workers_spawn() -> None:
    """A joblib (loky) worker's default start method is 'loky', which a process spawned from
    it cannot set up again, so vLLM's engine core would fail to start: use 'spawn' there."""
    if multiprocessing.get_start_method(allow_none=True) == "loky":
        multiprocessing.set_start_method("spawn", force=True)


@hydra.main(config_path=str(config_dir()), config_name="run", version_base=None)
def _job(cfg: DictConfig) -> float | None:
    try:
        settings = settled(cfg)
    except BadRequestError as exc:
        exit_with(exc, 2)
    folder = Path(HydraConfig.get().runtime.output_dir)
    if not in_launching_process():  # a worker: Hydra's launcher reports what it raises
        let_workers_spawn()
        return _accuracy(experiment(settings, folder, HOST, keep_engine=False))  # type: ignore[arg-type]
    sequential_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return _accuracy(experiment(settings, folder, HOST, keep_engine=sequential_sweep))  # type: ignore
    except BadRequestError as exc:
        exit_with(exc, 2)
    except PonderError as exc:
        exit_with(exc, 1)
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to continue {folder}", file=sys.stderr)
        exit_with(None, 130)
    return None


def _accuracy(summary: Summary | None) -> float | None:
    """What a job returns, for Hydra's optimizing sweepers."""
    return summary.accuracy if summary is not None else None


def exit_with(error: Exception | None, status: int) -> NoReturn:
    """Leave with one line, not a traceback: the error is the user's to fix (2) or the
    backend's (1). Raised through Hydra, so a sweep stops here."""
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
    raise SystemExit(status)


def call_hydra_app(job: Callable[[], object], program: str, argv: Sequence[str], host: EngineHost) -> int:
    """Run a ``@hydra.main`` function as ``program argv...`` (Hydra reads ``sys.argv``) and
    close ``host``'s engine after it; the exit status."""
    saved = sys.argv
    sys.argv = [program, *argv]
    store_class_defaults()
    try:
        job()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
        host.close()
    return 0


def main(argv: Sequence[str]) -> int:
    """Run the app with ``argv`` (Hydra's arguments: overrides, -m, --cfg job, ...)."""
    return call_hydra_app(_job, "ponder run", argv, HOST)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
