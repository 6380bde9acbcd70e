"""``ponder run`` and ``ponder report`` end to end in their own processes, as a user runs
them, on the real engine with the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SMALL = ["strategy=self_consistency", "strategy.sampling.max_tokens=48", "progress=false"]


def ponder(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "ponder.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_a_run_on_ten_arithmetic_problems_writes_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    ponder("run", *SMALL, "strategy.n=4", "dataset=arithmetic", "dataset.size=10", f"hydra.run.dir={folder}",
           cwd=tmp_path)
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(10))
    for record in records:
        assert record["reference"] is not None and record["grade"] in ("correct", "incorrect")
        assert 1 <= len(record["candidates"]) <= 4
        assert record["usage"]["generated_tokens"] == sum(c["num_tokens"] for c in record["candidates"])
        assert record["wall_seconds"] > 0 and record["budget_exhausted"] is False
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["problems"] == 10
    assert summary["accuracy"] == sum(r["grade"] == "correct" for r in records) / 10
    assert set(summary["pass_at_k"]) == {"1", "2", "4"} and set(summary["majority_at_k"]) == {"1", "2", "4"}
    assert summary["pass_at_k"]["1"] <= summary["pass_at_k"]["4"]
    assert summary["tokens_per_problem"]["generated_tokens"] == pytest.approx(
        sum(r["usage"]["generated_tokens"] for r in records) / 10
    )
    assert 0 <= summary["prefix_cache_hit_rate"] <= 1
    assert any(name.startswith("vllm") for name in summary["versions"])
    assert Path(summary["versions"]["model_path"]).is_dir()
    assert "strategy" in (folder / "config.yaml").read_text()
    assert "accuracy" in (folder / "run.log").read_text()


def test_a_two_point_sweep_reuses_the_engine_and_reports_the_scaling_curve(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ponder("run", "-m", *SMALL, "dataset.size=4", "strategy.n=1,4", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    # one folder per point, named by its overrides
    folders = [next(sweep.glob(f"*strategy.n={n},*")) for n in (1, 4)]
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in folders]
    assert [s["config"]["strategy"]["n"] for s in summaries] == [1, 4]
    assert summaries[0]["candidates_per_problem"] < summaries[1]["candidates_per_problem"]
    assert "engine: reused from the previous job" in (folders[1] / "run.log").read_text()

    report = ponder("report", str(sweep), cwd=tmp_path)
    table = report.stdout.splitlines()
    assert table[0].split()[:3] == ["run", "dataset", "strategy"]
    assert [line.split()[2] for line in table[1:3]] == ["self_consistency"] * 2  # strategy.n=1, then 4
    assert (sweep / "scaling.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (sweep / "report.csv").read_text().count("\n") == 3
