"""The `ponder` command end to end in its own process, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_solve_prints_the_whole_result_as_json() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "solve", "What is 17 + 25?", "strategy.n=4",
         "strategy.sampling.max_tokens=64", "budget.generated_tokens=1000", "--reference", "42", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert result["strategy"] == "self_consistency"
    assert result["config"]["budget"]["generated_tokens"] == 1000
    assert 1 <= len(result["candidates"]) <= 4
    assert 0 < result["usage"]["generated_tokens"] <= 1000
    assert result["usage"]["model_calls"] >= 1
    assert "Traceback" not in completed.stderr
