"""The `ponder` command end to end in its own process, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ENGINE_NOISE = re.compile(r"pid=\d+\) (DEBUG|INFO|WARNING) |FutureWarning|Triton|NUMA|Loading safetensors")
"""What vLLM (its log lines below ERROR), torch and their progress bars print while an engine
starts and runs."""

ENGINE_ENV = ("VLLM_LOGGING_LEVEL", "VLLM_LOGGING_STREAM", "VLLM_CONFIGURE_LOGGING", "PYTHONWARNINGS",
              "TORCH_CPP_LOG_LEVEL", "TRANSFORMERS_VERBOSITY")


def ponder(*argv: str) -> subprocess.CompletedProcess[str]:
    """``ponder ARGV`` as a user runs it: none of the engine's settings exported."""
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_ENV}
    return subprocess.run([sys.executable, "-m", "ponder.cli", *argv], capture_output=True,
                          text=True, timeout=600, env=env)


def test_solve_prints_the_whole_result_as_json_and_nothing_else() -> None:
    completed = ponder("solve", "What is 17 + 25?", "strategy.n=4", "strategy.sampling.max_tokens=64",
                       "budget.generated_tokens=1000", "--reference", "42", "--json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    noise = [line for line in completed.stderr.splitlines() if ENGINE_NOISE.search(line)]
    assert noise == [], completed.stderr[-2000:]  # errors still show: they are the user's business
    result = json.loads(completed.stdout)
    assert result["strategy"] == "self_consistency"
    assert result["config"]["budget"]["generated_tokens"] == 1000
    assert 1 <= len(result["candidates"]) <= 4
    assert 0 < result["usage"]["generated_tokens"] <= 1000
    assert result["usage"]["model_calls"] >= 1


def test_verbose_solve_shows_the_engine_logs_on_stderr_and_only_the_result_on_stdout() -> None:
    completed = ponder("-v", "solve", "What is 6 times 2?", "strategy.n=2", "strategy.sampling.max_tokens=32")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.startswith("answer: ")
    assert [line.split(":")[0] for line in completed.stdout.splitlines()] == [
        "answer", "answers", "votes", "chosen_by", "candidates", "usage"]
    assert "INFO" in completed.stderr and "Loading safetensors checkpoint shards" in completed.stderr
