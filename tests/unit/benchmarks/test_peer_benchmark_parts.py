"""The peer benchmark's parts that need no engine: which rows a run reports, how a failing
peer becomes a failed row, how ponder rows are graded, the targets and the written report."""

from __future__ import annotations

import json
from pathlib import Path

import peer_benchmark
import peer_report
import peer_settings
import pytest
from peer_report import Row

from ponder.backends.scripted import ScriptedBackend
from ponder.core.problem import Problem
from ponder.strategies import BeamSearch, ParticleFilter

SMOKE = peer_settings.SIZES["smoke"]


def test_a_smoke_run_reports_every_tool_strategy_and_n() -> None:
    rows = peer_benchmark.expected_rows(SMOKE)
    assert len(rows) == len(set(rows)) == 2 + 3 * 4
    assert rows[0] == ("engine (server)", "self_consistency", 2)
    assert {tool for tool, _, _ in rows} == set(peer_report.TOOLS)
    for tool in ("its_hub (server)", "ponder (server)", "ponder (in-process)"):
        assert {s for t, s, _ in rows if t == tool} == set(peer_settings.STRATEGIES)


@pytest.mark.parametrize(
    ("n", "children", "kept"), [(2, 2, 1), (4, 4, 1), (8, 4, 2), (16, 4, 4), (6, 3, 2)], ids=str
)
def test_beam_children_divide_n_and_its_hub_keeps_the_rest(
    n: int, children: int, kept: int
) -> None:
    beam = peer_settings.ponder_strategy("beam", n, SMOKE)
    assert isinstance(beam, BeamSearch)
    assert (beam.beam_width, beam.kept) == (children, kept)
    assert n // peer_settings.beam_children(n, SMOKE) == kept  # its_hub's beam_width


def test_ponder_strategies_match_their_its_hub_counterparts() -> None:
    particles = peer_settings.ponder_strategy("particle_filter", 4, SMOKE)
    assert isinstance(particles, ParticleFilter)
    assert (particles.resampling, particles.selection, particles.max_steps) == (
        "multinomial",
        "argmax",
        2,
    )
    assert particles.sampling.top_p == 1.0
    assert particles.sampling.max_tokens == SMOKE.max_steps * SMOKE.step_tokens
    with pytest.raises(ValueError, match="strategy must be one of"):
        peer_settings.ponder_strategy("mcts", 4, SMOKE)


def test_settings_survive_the_trip_to_the_runner() -> None:
    sent = json.loads(json.dumps(SMOKE.to_dict()))
    assert peer_settings.Settings.from_dict(sent) == SMOKE


async def test_a_missing_peer_is_a_failed_row_with_the_reason(tmp_path: Path) -> None:
    problems = peer_settings.problems(SMOKE)
    missing = tmp_path / "no-venv" / "bin" / "python"
    row = await peer_benchmark.measure(
        ("its_hub (server)", "beam", 2),
        problems,
        lambda: peer_benchmark.run_its_hub("beam", 2, SMOKE, problems, server=None, python=missing),  # type: ignore[arg-type]
    )
    assert row.status == "failed"
    assert "its_hub is not installed" in row.reason and "make peers" in row.reason
    assert row.accuracy is None and row.wall_s is None


async def test_ponder_rows_are_graded_on_the_selected_answer() -> None:
    problems = [
        Problem(prompt="What is 2 + 3?", reference="5"),
        Problem(prompt="What is 4 + 4?", reference="8"),
    ]
    # two chains per problem; problems run at once, so the script is shared in order
    backend = ScriptedBackend.from_script(["Answer: 5", "Answer: 5", "Answer: 7", "Answer: 7"])
    row = await peer_benchmark.measure(
        ("ponder (in-process)", "self_consistency", 2),
        problems,
        lambda: peer_benchmark.run_ponder("self_consistency", 2, SMOKE, problems, backend),
    )
    assert row.status == "ok", row.reason
    assert (row.correct, row.problems, row.accuracy) == (1, 2, 0.5)
    assert row.generated_tokens == len("Answer: 5") * 2 + len("Answer: 7") * 2
    assert row.wall_s > 0 and row.tokens_per_s > 0


def _rows() -> list[Row]:
    return [
        Row(
            "engine (in-process)",
            "self_consistency",
            4,
            problems=16,
            generated_tokens=1000,
            wall_s=10.0,
        ),
        Row(
            "ponder (in-process)",
            "self_consistency",
            4,
            problems=16,
            correct=8,
            generated_tokens=900,
            wall_s=10.0,
        ),
        Row(
            "its_hub (server)", "beam", 4, problems=16, correct=6, generated_tokens=500, wall_s=40.0
        ),
        Row(
            "ponder (in-process)",
            "beam",
            4,
            problems=16,
            correct=7,
            generated_tokens=500,
            wall_s=10.0,
        ),
        peer_report.failed("its_hub (server)", "particle_filter", 4, "RuntimeError: boom"),
        Row(
            "ponder (in-process)",
            "particle_filter",
            4,
            problems=16,
            correct=7,
            generated_tokens=500,
            wall_s=10.0,
        ),
    ]


def test_targets_are_ratios_of_rows_of_the_same_run() -> None:
    found = {(t.name.split(":")[0], t.n): t for t in peer_report.targets(_rows())}
    assert set(found) == {("beam", 4), ("self_consistency", 4)}  # the failed peer has no ratio
    assert found["beam", 4].ratio == pytest.approx(4.0) and found["beam", 4].met
    assert "+0.06" in found["beam", 4].note
    ceiling = found["self_consistency", 4]
    assert ceiling.ratio == pytest.approx(0.9) and ceiling.met


def test_the_report_is_written_as_markdown_json_and_a_plot(tmp_path: Path) -> None:
    rows = _rows()
    rows[1].wall_s = 12.0  # 75 tok/s against 100: the ceiling target is missed
    text = peer_report.write(rows, tmp_path, "Peers", SMOKE.to_dict())
    assert "failed: RuntimeError: boom" in text
    assert "missed by 0.15" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["tool"] for r in data["rows"]] == [r.tool for r in rows]
    assert data["rows"][4]["status"] == "failed" and data["settings"]["max_tokens"] == 64
    assert (tmp_path / "accuracy_vs_wall.png").stat().st_size > 1000
