"""A run folder has one job at a time: a second process that wants it waits for the first,
then resumes it (finding its problems done), and the records stay one per problem."""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import threading
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.config import compose
from ponder.core.generation import GenerationRequest
from ponder.experiments.rundir import RunDir

SPAWN = multiprocessing.get_context("spawn")
OVERRIDES = ["dataset=arithmetic", "dataset.size=4", "strategy.n=2", "progress=false"]


def hold_the_folder(folder: Path, holding: Event, release: Event) -> None:
    with RunDir(folder):
        holding.set()
        release.wait(60)
        (folder / "first-job-done").touch()


def test_a_second_process_waits_until_the_first_releases_the_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holding, release = SPAWN.Event(), SPAWN.Event()
    first = SPAWN.Process(target=hold_the_folder, args=(tmp_path, holding, release))
    first.start()
    try:
        assert holding.wait(60)
        ending = threading.Timer(1.0, release.set)  # the first job ends while this one waits
        ending.start()
        with caplog.at_level(logging.INFO, "ponder.experiments.rundir"), RunDir(tmp_path):
            assert (tmp_path / "first-job-done").exists()
    finally:
        release.set()
        first.join(60)
    assert first.exitcode == 0
    assert "in use by another job; waiting until it ends" in caplog.text


def test_the_lock_is_released_when_the_run_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError), RunDir(tmp_path):
        raise ValueError("the run failed")
    holding, release = SPAWN.Event(), SPAWN.Event()
    release.set()
    other = SPAWN.Process(target=hold_the_folder, args=(tmp_path, holding, release))
    other.start()
    other.join(60)
    assert other.exitcode == 0 and holding.is_set()


def test_start_outside_the_lock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not locked"):
        RunDir(tmp_path).start({}, resume=True, problem_ids=[])


def slow_arithmetic(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
    prompt = "".join(map(chr, request.prompt_token_ids))
    expression = re.findall(r"What is ([\d +\-*/()]+)\?", prompt)[-1]
    return ScriptedSample(f"Answer: {eval(expression.replace('/', '//'))}", delay=0.2)


def run_the_experiment(folder: Path, together: Barrier, results: multiprocessing.Queue) -> None:
    """One job of ``ponder run``, in its own process, on the scripted backend."""
    import ponder.backends.pool as pool
    from ponder.experiments.app import RunConfig, experiment
    from ponder.experiments.engines import EngineHost

    built: list[ScriptedBackend] = []

    async def open_backend(spec: dict) -> ScriptedBackend:
        built.append(ScriptedBackend(slow_arithmetic))
        return built[-1]

    pool.open_backend = open_backend
    config = compose(OVERRIDES, config_name="run")
    settings = {key: config[key] for key in RunConfig.model_fields if key in config}
    host = EngineHost()
    together.wait(60)
    try:
        summary = experiment(settings, folder, host, keep_engine=False)
    finally:
        host.close()
    results.put((summary.accuracy, summary.problems, len(built)))


def test_two_jobs_on_one_folder_both_succeed_and_the_second_resumes_the_first(tmp_path: Path) -> None:
    together, results = SPAWN.Barrier(2), SPAWN.Queue()
    jobs = [SPAWN.Process(target=run_the_experiment, args=(tmp_path, together, results)) for _ in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
    assert [job.exitcode for job in jobs] == [0, 0]
    outcomes = sorted([results.get(timeout=5) for _ in jobs], key=lambda outcome: outcome[2])
    assert outcomes == [(1.0, 4, 0), (1.0, 4, 1)]  # the waiting job found nothing left to solve
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["complete"] and summary["solved_this_run"] == 0
