"""``ponder run -m`` through Hydra's launchers, as a user runs it: joblib's local workers and
submitit's local executor (the code path SLURM uses) each run jobs in their own processes, each
job with its own engine, closed when it ends; two jobs that want one folder take turns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

PONDER = Path(sys.executable).with_name("ponder")
TINY = ["dataset=arithmetic", "dataset.size=2", "strategy.sampling.max_tokens=8", "progress=false"]


def ponder_run(*overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``ponder run -m OVERRIDES``; afterwards no process it started (an engine, a worker) is
    left: they are found by a mark in their environment, which every descendant inherits."""
    mark = uuid.uuid4().hex
    env = {**os.environ, "PONDER_LAUNCHER_TEST": mark}
    completed = subprocess.run([str(PONDER), "run", "-m", *TINY, *overrides], cwd=cwd, env=env,
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert _processes_marked(mark) == []
    return completed


def _processes_marked(mark: str) -> list[str]:
    left = []
    for process in psutil.process_iter(["pid", "name"]):
        try:
            if process.environ().get("PONDER_LAUNCHER_TEST") == mark:
                left.append(f"{process.info['pid']} {process.info['name']}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return left


def engine_pids(folder: Path) -> list[int]:
    """The processes that started an engine for this folder's jobs, from its run.log."""
    return [int(pid) for pid in re.findall(r"engine: started in process (\d+)", (folder / "run.log").read_text())]


def complete_summary(folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["problems"] == 2
    records = (folder / "records.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in records) == [0, 1]
    return summary


def test_joblib_runs_two_jobs_in_two_workers_each_with_its_own_engine(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ponder_run("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "strategy.n=1,2",
               f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    folders = [next(sweep.glob(f"*strategy.n={n},*")) for n in (1, 2)]
    assert [complete_summary(folder)["config"]["strategy"]["n"] for folder in folders] == [1, 2]
    workers = [engine_pids(folder) for folder in folders]
    assert [len(pids) for pids in workers] == [1, 1] and workers[0] != workers[1]


def test_submitit_local_runs_the_jobs_and_keeps_its_folder_in_the_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ponder_run("hydra/launcher=submitit_local", "hydra.launcher.timeout_min=20", "strategy.n=1,2",
               f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    folders = [next(sweep.glob(f"*strategy.n={n},*")) for n in (1, 2)]
    for folder in folders:
        complete_summary(folder)
    assert len({pid for folder in folders for pid in engine_pids(folder)}) == 2
    assert (sweep / ".submitit").is_dir() and not (tmp_path / ".submitit").exists()


def test_the_same_point_twice_at_once_waits_for_the_folder_and_both_jobs_succeed(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ponder_run("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "strategy.n=1,1",
               f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    (folder,) = [path for path in sweep.iterdir() if path.is_dir()]  # Hydra keeps both points
    summary = complete_summary(folder)
    log = (folder / "run.log").read_text()
    assert "is in use by another job; waiting until it ends" in log
    assert len(engine_pids(folder)) == 1  # the job that waited found both problems done
    assert summary["solved_this_run"] == 0
