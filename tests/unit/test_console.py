"""The terminal stays quiet: the engine's logs only when asked, never on stdout, also in the
engine core, a spawned process (each test runs a fresh interpreter, as a user would)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ponder import console

ENGINE_ENV = {*console.QUIET_ENGINE_ENV, *console.VERBOSE_ENGINE_ENV}

SCRIPT = '''
import multiprocessing
import sys

import ponder
from ponder.console import prepare_engine_output


def engine_core() -> None:
    """What vLLM's engine core does: log while importing, before its logging is set up."""
    from vllm.logger import init_logger

    init_logger("vllm.core").warning("a warning from the engine core")


if __name__ == "__main__":
    prepare_engine_output(verbose=sys.argv[1] == "verbose")
    from vllm.config.logging import LoggingConfig
    from vllm.logger import configure_logging, init_logger

    init_logger("vllm.early").warning("a warning before vLLM sets up its logging")
    configure_logging(LoggingConfig())  # as building an engine does
    log = init_logger("vllm.engine")
    log.info("an info line")
    log.error("an error line")
    if sys.argv[1] == "quiet":  # each spawned child imports vLLM again: seconds
        child = multiprocessing.get_context("spawn").Process(target=engine_core)
        child.start()
        child.join()
'''


def run_script(tmp_path: Path, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "uses_ponder.py"
    script.write_text(SCRIPT)
    clean = {k: v for k, v in os.environ.items() if k not in ENGINE_ENV} | env
    return subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                          env=clean, timeout=300, check=True)


def test_by_default_only_engine_errors_show_and_only_on_stderr(tmp_path: Path) -> None:
    done = run_script(tmp_path, "quiet")
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("an error line"), done.stderr


def test_verbose_shows_the_engine_logs_on_stderr(tmp_path: Path) -> None:
    done = run_script(tmp_path, "verbose")
    assert done.stdout == ""
    for line in ("a warning before vLLM sets up its logging", "an info line", "an error line"):
        assert line in done.stderr


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_users_own_settings_win(verbose: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENGINE_ENV:
        monkeypatch.setenv(name, "mine")
    console.prepare_engine_output(verbose)
    assert {name: os.environ[name] for name in ENGINE_ENV} == dict.fromkeys(ENGINE_ENV, "mine")


def test_unset_settings_get_the_quiet_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENGINE_ENV:
        monkeypatch.setenv(name, "")  # recorded, so the test's changes are undone after it
        monkeypatch.delenv(name)
    engine_logger = logging.getLogger("vllm")
    monkeypatch.setattr(engine_logger, "level", engine_logger.level)
    console.prepare_engine_output()
    assert {name: os.environ[name] for name in console.QUIET_ENGINE_ENV} == console.QUIET_ENGINE_ENV
    assert engine_logger.level == logging.ERROR


def test_importing_ponder_prints_nothing(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ENGINE_ENV}
    done = subprocess.run([sys.executable, "-c", "import ponder, ponder.cli, ponder.server"],
                          capture_output=True, text=True, env=clean, timeout=300, check=True)
    assert (done.stdout, done.stderr) == ("", "")


@pytest.mark.parametrize(
    ("level", "shown"),
    [(None, True), ("INFO", True), ("debug", True), ("WARNING", False), ("ERROR", False)],
    ids=["unset", "info", "debug", "warning", "error"],
)
def test_engine_progress_bars_follow_the_engine_log_level(
    level: str | None, shown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    if level is not None:
        monkeypatch.setenv("VLLM_LOGGING_LEVEL", level)
    assert console.engine_logs_shown() is shown


def test_progress_writes_nothing_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with console.progress("loading engine (smollm2-135m-instruct)…", interval_s=0.01):
        pass
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("app", ["run", "verifier_train"])
def test_the_experiment_apps_log_to_stderr(app: str) -> None:
    from hydra import compose, initialize_config_dir

    from ponder.config import config_dir
    from ponder.graph.defaults import store_class_defaults

    store_class_defaults()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        hydra = compose(config_name=app, return_hydra_config=True).hydra
    assert hydra.job_logging.handlers.console.stream == "ext://sys.stderr"
    assert hydra.hydra_logging.handlers.console.stream == "ext://sys.stderr"
