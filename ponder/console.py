"""What ponder shows on a terminal: results on stdout; on stderr a one-line progress while a
slow step runs, and the engine's own logs, warnings and progress bars only when asked.

vLLM sets up its logging from environment variables when an engine is built, in this process
and in the engine-core process it spawns, which inherits them: so they are set here, before
an engine starts, as defaults that a user's own export overrides. Before vLLM sets its logging
up, its warnings would reach Python's last-resort handler, so ``vLLM``'s logger gets its level
at once (also in the engine core, which imports the main module, and so ponder, first).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

QUIET_ENGINE_ENV = {
    "VLLM_LOGGING_LEVEL": "ERROR",
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",
    "TRANSFORMERS_VERBOSITY": "error",
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # the engine core's C++ notices (NUMA binding)
    "PYTHONWARNINGS": "ignore::FutureWarning",  # the engine core's torch deprecations
}
"""The engine's settings by default: only its errors, and on stderr."""

VERBOSE_ENGINE_ENV = {"VLLM_LOGGING_LEVEL": "INFO", "VLLM_LOGGING_STREAM": "ext://sys.stderr"}
"""With ``-v``: everything vLLM logs, still on stderr."""


def prepare_engine_output(verbose: bool = False) -> None:
    """Set the engine's logging defaults; call before an engine starts (its core process
    reads them when it is spawned). Variables the user set are left as they are."""
    for name, value in (VERBOSE_ENGINE_ENV if verbose else QUIET_ENGINE_ENV).items():
        os.environ.setdefault(name, value)
    apply_engine_log_level()


def apply_engine_log_level() -> None:
    """Give vLLM's logger the level vLLM will configure it with, before vLLM does."""
    level = os.environ.get("VLLM_LOGGING_LEVEL")
    if level and isinstance(logging.getLevelName(level.upper()), int):
        logging.getLogger("vllm").setLevel(level.upper())


def engine_logs_shown() -> bool:
    """Whether the engine's informational output (its logs, its loading progress bars) is on."""
    level = logging.getLevelName(os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper())
    return not isinstance(level, int) or level <= logging.INFO


@contextmanager
def progress(label: str, *, interval_s: float = 0.5) -> Iterator[None]:
    """One line on stderr, ``label`` and the time so far, redrawn until the block ends; only
    when stderr is a terminal (a log file gets nothing)."""
    bar = tqdm(desc=label, bar_format="{desc} {elapsed}", file=sys.stderr, disable=None, leave=False)
    if bar.disable:
        yield
        return
    done = threading.Event()

    def tick() -> None:
        while not done.wait(interval_s):
            bar.refresh()

    ticker = threading.Thread(target=tick, name="ponder-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        bar.close()


apply_engine_log_level()
