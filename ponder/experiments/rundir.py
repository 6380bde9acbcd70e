"""The folder of one run, and resuming it.

    config.yaml     the resolved config of the run (Hydra keeps its own copy in .hydra/)
    records.jsonl   one record per finished problem, appended as each finishes
    summary.json    the metrics, the config and the versions, rewritten as each invocation ends
    versions.json   the versions of ponder, vLLM, the model ... when the run started
    run.log         Hydra's log of the job
    .lock           held (flock) by the job that has the folder: one writer at a time

A folder belongs to one job at a time (``with RunDir(path) as run:``): a second job that wants
it (a sweep that names the same point twice, an Optuna batch that proposes one config twice)
waits until the first has written its summary, then resumes the folder, finding its problems
done.

A folder with records is continued (``resume=true``, the default): only problems without a
record run. That is safe only for the same experiment, so the keys that decide the records
(seed, dataset, strategy, backend, budget) must equal those in the folder's config.yaml.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock, Timeout
from omegaconf import OmegaConf

from ponder.errors import BadRequestError
from ponder.experiments.records import ProblemRecord, RecordLog

log = logging.getLogger(__name__)

RESULT_KEYS = ("seed", "dataset", "strategy", "backend", "budget")
"""Config keys that decide what a problem's record holds; the others (concurrency, progress,
metrics, resume) may change between the invocations of one run."""


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.config_file = path / "config.yaml"
        self.summary_file = path / "summary.json"
        self.versions_file = path / "versions.json"
        self.records = RecordLog(path / "records.jsonl")
        self._lock = FileLock(path / ".lock")

    def __enter__(self) -> RunDir:
        """Take the folder, waiting while another job (another process) has it."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            log.info("%s is in use by another job; waiting until it ends", self.path)
            self._lock.acquire()
            log.info("%s is free; continuing it", self.path)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._lock.release()

    def start(
        self, config: Mapping[str, Any], *, resume: bool, problem_ids: Iterable[str]
    ) -> list[ProblemRecord]:
        """Prepare the folder for ``config``; the records of problems already done."""
        if not self._lock.is_locked:
            raise RuntimeError(f"{self.path}: start() outside `with RunDir(...)`: not locked")
        done = self.records.read() if resume else []
        if done:
            self._check_same_experiment(config)
            unknown = sorted({r.id for r in done} - set(problem_ids))
            if unknown:
                raise BadRequestError(
                    f"{self.records.path} has records of problems the dataset no longer holds "
                    f"(e.g. {unknown[0]!r}); the dataset changed since the run started: "
                    "resume=false starts it over"
                )
        else:
            self.records.clear()
            self.summary_file.unlink(missing_ok=True)
            self.versions_file.unlink(missing_ok=True)
        resolved = OmegaConf.to_yaml(OmegaConf.create(dict(config)))
        self.config_file.write_text(resolved, encoding="utf-8")
        return done

    def _check_same_experiment(self, config: Mapping[str, Any]) -> None:
        if not self.config_file.exists():
            raise BadRequestError(
                f"{self.path} has records but no config.yaml, so it cannot be resumed safely: "
                "resume=false starts it over"
            )
        stored = OmegaConf.to_container(OmegaConf.load(self.config_file))
        before = _flatten({k: stored.get(k) for k in RESULT_KEYS})  # type: ignore[union-attr]
        now = _flatten({k: config.get(k) for k in RESULT_KEYS})
        changed = [f"{key}: {before.get(key)!r} -> {now.get(key)!r}"
                   for key in sorted(before.keys() | now.keys()) if before.get(key) != now.get(key)]
        if changed:
            raise BadRequestError(
                f"{self.path} holds a run of another experiment ({'; '.join(changed)}); "
                "resume=false starts it over, or choose another folder (hydra.run.dir=...)"
            )

    def record_versions(self, versions: Mapping[str, Any]) -> None:
        """Keep the versions the run started with; warn when a resumed run has others."""
        if self.versions_file.exists():
            started = json.loads(self.versions_file.read_text(encoding="utf-8"))
            changed = {k: (started.get(k), v) for k, v in versions.items() if started.get(k) != v}
            for key, (old, new) in changed.items():
                log.warning("%s changed since this run started: %s -> %s", key, old, new)
            return
        self.versions_file.write_text(json.dumps(dict(versions), indent=2) + "\n", encoding="utf-8")

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self.summary_file.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        items: dict[str, Any] = {}
        for key, inner in value.items():
            items.update(_flatten(inner, f"{prefix}{key}."))
        return items or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): value}
