"""``ponder run`` in-process over the scripted backend: the folder it writes, resuming, the
basic launcher's sweep sharing one backend, and bad input refused before any backend exists."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.cli import main
from ponder.core.generation import GenerationRequest

QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none", "progress=false"]
SMALL = ["dataset.size=5", "strategy.n=3", "strategy.sampling.max_tokens=32"]


class ArithmeticBackend(ScriptedBackend):
    """Solves the generated arithmetic right in every sample but the second; counts closes."""

    def __init__(self) -> None:
        super().__init__(self.answer)
        self.closed = 0

    @staticmethod
    def answer(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        prompt = "".join(map(chr, request.prompt_token_ids))
        expression = re.findall(r"What is ([\d +\-*/()]+)\?", prompt)[-1]
        return ScriptedSample(f"Answer: {eval(expression.replace('/', '//')) + (sample == 1)}")

    async def close(self) -> None:
        self.closed += 1


def _build_into(built: list[tuple[dict, ArithmeticBackend]]):
    async def build(spec: dict) -> ArithmeticBackend:
        built.append((dict(spec), ArithmeticBackend()))
        return built[-1][1]

    return build


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict, ArithmeticBackend]]:
    """Every backend the app builds, with the config it was built from."""
    built: list[tuple[dict, ArithmeticBackend]] = []
    monkeypatch.setattr("ponder.backends.pool.open_backend", _build_into(built))
    return built


def run(folder: Path, *overrides: str) -> int:
    return main(["run", *QUIET, f"hydra.run.dir={folder}", *overrides])


def test_a_run_writes_config_records_and_summary(tmp_path: Path, backends: list) -> None:
    folder = tmp_path / "run"
    assert run(folder, *SMALL) == 0
    assert len(backends) == 1 and backends[0][0]["model"] == "embedded"
    config = OmegaConf.load(folder / "config.yaml")
    assert (config.strategy.n, config.dataset.size, config.seed) == (3, 5, 0)
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3, 4]
    assert all(len(r["candidates"]) == 3 and r["grade"] == "correct" for r in records)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["problems"] == summary["problems_total"] == 5
    assert summary["accuracy"] == 1.0
    assert summary["pass_at_k"] == {"1": pytest.approx(2 / 3), "2": 1.0, "3": 1.0}
    assert summary["majority_at_k"]["3"] == 1.0 and summary["weighted_at_k"] is None
    assert summary["tokens_per_problem"]["generated_tokens"] > 0
    assert summary["versions"]["ponder"] and summary["versions"]["model"] == "embedded"
    assert summary["config"]["strategy"]["n"] == 3
    assert (folder / "versions.json").exists() and (folder / ".hydra" / "config.yaml").exists()
    assert backends[0][1].closed == 1  # a single run closes its engine when it ends


def test_the_same_command_resumes_and_solves_only_what_is_missing(tmp_path: Path, backends: list) -> None:
    folder = tmp_path / "run"
    assert run(folder, *SMALL) == 0
    lines = (folder / "records.jsonl").read_text().splitlines(keepends=True)
    (folder / "records.jsonl").write_text("".join(lines[:3]))  # as if interrupted after three
    assert run(folder, *SMALL, "concurrency=1") == 0  # concurrency may change between invocations
    assert len(backends[1][1].requests) == 2
    assert len((folder / "records.jsonl").read_text().splitlines()) == 5
    assert run(folder, *SMALL) == 0
    assert len(backends) == 2  # nothing left to solve: no backend at all


def test_resuming_another_experiment_is_refused_and_resume_false_starts_over(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    assert run(folder, *SMALL) == 0
    assert run(folder, *SMALL, "strategy.n=4") == 2
    assert "holds a run of another experiment (strategy.n: 3 -> 4)" in capsys.readouterr().err
    assert len(backends) == 1
    assert run(folder, *SMALL, "strategy.n=4", "resume=false") == 0
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert len(records) == 5 and all(len(r["candidates"]) == 4 for r in records)


def test_a_basic_launcher_sweep_shares_one_backend_and_closes_it_at_the_end(tmp_path: Path, backends: list) -> None:
    sweep = tmp_path / "sweep"
    assert main(["run", "-m", *QUIET, f"hydra.sweep.dir={sweep}", *SMALL[:2], "strategy.sampling.max_tokens=16,32"]) == 0
    assert len(backends) == 1 and backends[0][1].closed == 1
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert folders == [f"dataset.size=5,strategy.n=3,strategy.sampling.max_tokens={m}" for m in (16, 32)]
    for name in folders:
        assert json.loads((sweep / name / "summary.json").read_text())["problems"] == 5


BAD = [
    ("missing-file", ["dataset=file", "dataset.path=/no/such/file.jsonl"], 2, "dataset.path: no file at /no/such/file.jsonl"),
    ("no-such-column", ["dataset=word_problems", "dataset.fields.question=prompt"], 2,
     "dataset.fields.question: no column 'prompt'"),
    ("bad-strategy-value", ["strategy.n=0"], 2, "strategy.n: Input should be greater than or equal to 1"),
    ("bad-run-value", ["concurrency=0"], 2, "run.concurrency: Input should be greater than or equal to 1"),
    ("bad-budget", ["budget.generated_tokens=-1"], 2, "budget.generated_tokens"),
    ("bad-k", ["metrics.k=[4,0]"], 2, "run.metrics.k.1: Input should be greater than 0"),
    ("unknown-key", ["strategy.nn=3"], 1, "Key 'nn' is not in struct"),
    ("unknown-dataset", ["dataset=nowhere"], 1, "Could not find 'dataset/nowhere'"),
]


@pytest.mark.parametrize(("overrides", "status", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_fails_before_any_backend_is_built(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str], overrides: list[str], status: int, message: str
) -> None:
    assert run(tmp_path / "run", *overrides) == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert backends == []


@pytest.fixture
def default_ctrl_c() -> Iterator[None]:
    """Ctrl-C as a terminal delivers it: Python's default SIGINT handler, which asyncio's runner
    replaces with its own while a run is on, whatever an earlier test in the session left."""
    earlier = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, earlier)


@pytest.mark.usefixtures("default_ctrl_c")
def test_an_interrupted_run_keeps_its_records_and_the_same_command_finishes_it(
    tmp_path: Path, backends: list, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = ArithmeticBackend.answer

    def interrupt_at_the_fourth_request(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        if call == 3 and sample == 0:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the engine works
        return answer(request, sample, call)

    monkeypatch.setattr(ArithmeticBackend, "answer", staticmethod(interrupt_at_the_fourth_request))
    folder = tmp_path / "run"
    status = run(folder, *SMALL, "concurrency=1")
    err = capsys.readouterr().err
    assert status == 130, err[-3000:]
    assert "run the same command again to continue" in err
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["complete"], summary["problems"], summary["problems_total"]) == (False, 3, 5)

    monkeypatch.undo()
    monkeypatch.setattr("ponder.backends.pool.open_backend", _build_into(backends))
    assert run(folder, *SMALL) == 0
    assert len(backends[-1][1].requests) == 2
    assert json.loads((folder / "summary.json").read_text())["complete"] is True


def test_a_sweep_over_backend_settings_closes_each_engine_before_the_next(
    tmp_path: Path, backends: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed_before_build: list[list[int]] = []
    build = _build_into(backends)

    async def build_after_checking(spec: dict) -> ArithmeticBackend:
        closed_before_build.append([backend.closed for _, backend in backends])
        return await build(spec)

    monkeypatch.setattr("ponder.backends.pool.open_backend", build_after_checking)
    argv = ["run", "-m", *QUIET, f"hydra.sweep.dir={tmp_path}", *SMALL, "backend.max_num_seqs=8,16"]
    assert main(argv) == 0
    assert [spec["max_num_seqs"] for spec, _ in backends] == [8, 16]
    assert closed_before_build == [[], [1]]  # one engine alive at a time
    assert [backend.closed for _, backend in backends] == [1, 1]
