"""The peer benchmark at its smallest size (one problem, N=2) against a real vLLM server and
the session's engine: every row is reported, ok or failed with the reason, and the report
is written. The peers' environment is set up by `make peers` (cached after the first run)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import peer_benchmark
import peer_settings
import pytest

from ponder.backends.vllm_engine import VllmBackend

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SETUP_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def peers_python() -> Path | None:
    """its_hub's python, or None where its environment cannot be set up (no network)."""
    done = subprocess.run(
        ["make", "peers"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT_S,
    )
    return peer_benchmark.PEERS_PYTHON if done.returncode == 0 else None


async def test_a_smoke_run_reports_every_row(
    engine: VllmBackend, peers_python: Path | None, tmp_path: Path
) -> None:
    settings = peer_settings.SIZES["smoke"]
    python = peers_python or tmp_path / "no-peers" / "python"
    rows = await peer_benchmark.benchmark(settings, tmp_path, peers_python=python, engine=engine)

    assert [(r.tool, r.strategy, r.n) for r in rows] == peer_benchmark.expected_rows(settings)
    for row in rows:
        peer = row.tool.startswith("its_hub")
        if peer and peers_python is None:
            assert row.status == "failed" and "make peers" in row.reason
            continue
        assert row.status == "ok", f"{row.tool} {row.strategy}: {row.reason}"
        assert row.wall_s > 0 and row.generated_tokens > 0 and row.tokens_per_s > 0
        if row.tool.startswith("engine"):
            assert row.accuracy is None
        else:
            assert row.problems == 1 and row.accuracy in (0.0, 1.0)
        if row.tool.endswith("(server)"):  # the server's counters: every row sent requests
            assert row.requests >= 1 and row.prefix_cache_hit_rate is not None
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["rows"]) == len(rows)
    assert {t["name"].split(":")[0] for t in report["targets"]} >= {"self_consistency"}
    assert "| ponder (in-process) | particle_filter | 2 |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "accuracy_vs_wall.png").stat().st_size > 1000
