"""``ponder report``: runs found in folders, one table row per run, the scaling plot as PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.cli import main
from ponder.errors import BadRequestError
from ponder.experiments.report import find_runs, plot_scaling, rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def summary(strategy: str, accuracy: float | None, tokens: float, dataset: str = "arithmetic-d1") -> dict:
    return {
        "dataset": dataset, "strategy": strategy, "complete": True, "problems": 10, "problems_total": 10,
        "accuracy": accuracy, "pass_at_k": {"1": 0.3, "4": 0.7}, "majority_at_k": {"1": 0.3, "4": 0.5},
        "tokens_per_problem": {"generated_tokens": tokens}, "wall_seconds_per_problem": 1.5,
        "prefix_cache_hit_rate": 0.25,
    }


def make_run(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    make_run(root / "strategy.n=4", summary("self_consistency", 0.5, 400))
    make_run(root / "strategy.n=1", summary("self_consistency", 0.3, 100))
    make_run(root / "strategy=best_of_n", summary("best_of_n", 0.45, 420))
    (root / "multirun.yaml").write_text("")
    return root


def test_a_sweep_folder_stands_for_the_runs_below_it(sweep: Path) -> None:
    runs = find_runs([sweep])
    assert [run.folder.name for run in runs] == ["strategy.n=1", "strategy.n=4", "strategy=best_of_n"]
    assert find_runs([sweep / "strategy.n=4", sweep])[0].folder.name == "strategy.n=4"  # no repeats
    assert len(find_runs([sweep / "strategy.n=4", sweep])) == 3


def test_one_row_per_run_by_strategy_then_tokens(sweep: Path) -> None:
    table = rows(find_runs([sweep]))
    assert [row["run"] for row in table] == ["strategy=best_of_n", "strategy.n=1", "strategy.n=4"]
    first = table[1]
    assert first["strategy"] == "self_consistency"
    assert (first["accuracy"], first["k"], first["pass@k"], first["majority@k"]) == (0.3, 4, 0.7, 0.5)
    assert (first["generated_tokens"], first["problems"]) == (100.0, "10/10")


def test_the_plot_has_a_point_per_run_with_an_accuracy(sweep: Path, tmp_path: Path) -> None:
    make_run(sweep / "no-references", summary("self_consistency", None, 50))
    path = tmp_path / "plot.png"
    assert plot_scaling(find_runs([sweep]), path) == 3
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_the_command_prints_the_table_and_writes_csv_and_png(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "run", "dataset", "strategy", "problems", "accuracy", "k", "pass@k", "majority@k",
        "generated_tokens", "seconds", "cache_hit_rate",
    ]
    assert "strategy=best_of_n" in out and "0.450" in out
    assert (sweep / "scaling.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (sweep / "report.csv").read_text().count("\n") == 4


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda d: d / "missing", "no such folder"), (lambda d: d, "no summary.json in it or below")],
    ids=["missing-folder", "no-runs"],
)
def test_folders_without_runs_are_one_clear_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        find_runs([make(tmp_path)])
