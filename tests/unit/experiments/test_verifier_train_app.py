"""``ponder verifier train`` in-process over the scripted backend and a stand-in embedding
client: the folder it writes, and bad input refused before any backend exists. (The real
pooling engine is in tests/integration/test_verifier_training_engine.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.cli import main
from ponder.core.pooling import Pooled
from ponder.models.registry import resolve_model
from ponder.verifiers.features import Embedder, FeatureSpec
from ponder.verifiers.heads import load_verifier
from ponder.verifiers.prm import load_tokenizer
from tests.unit.experiments.test_run_app import QUIET, backends  # noqa: F401 (a fixture)


class FeatureClient:
    """Embeds a prompt as (its length, whether its last digit is odd): enough to fit a head."""

    max_model_len = 4096

    def __init__(self) -> None:
        self.prompts: list[list[int]] = []

    def alive(self) -> bool:
        return True

    async def pool(self, prompts: list[list[int]], separator_id: int | None) -> list[Pooled]:
        assert separator_id is None
        self.prompts += prompts
        return [Pooled([[float(len(p)), float(p[-1] % 2)]], len(p)) for p in prompts]

    async def close(self) -> None: ...


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> FeatureClient:
    client = FeatureClient()

    async def connect(cls, spec: FeatureSpec, ctx, *, max_model_len: int, gpu_share: float) -> Embedder:
        return Embedder(spec, client, load_tokenizer(resolve_model(spec.model)))

    monkeypatch.setattr(Embedder, "connect", classmethod(connect))
    return client


def train(folder: Path, *overrides: str) -> int:
    return main(["verifier", "train", "arithmetic", *QUIET, f"hydra.run.dir={folder}", *overrides])


def test_training_writes_the_file_plots_examples_and_metrics(
    tmp_path: Path, backends: list, embedded: FeatureClient, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "trained"
    assert train(folder, "dataset.size=8", "strategy.n=3", "labels.rollouts=0",
                 "head.min_positives=2", "head.min_negatives=2") == 0
    out = capsys.readouterr().out
    assert "8 problems, 24 chains (16 correct)" in out  # every sample but the second is right
    assert "outcome " in out and "val AUC" in out
    file = load_verifier(folder / "verifier.json")
    assert list(file.heads) == ["outcome"]  # no roll-outs: no step head
    assert file.features.dimensions == 2 and file.features.model == "embedded"
    metrics = file.heads["outcome"].metrics
    assert metrics.train_examples + metrics.validation_examples == 24
    assert len(embedded.prompts) == 16  # each distinct (problem, chain) once: 2 per problem
    examples = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    assert sum(e["label"] for e in examples) == 16
    assert json.loads((folder / "metrics.json").read_text())["training"]["chains"] == 24
    for plot in ("roc.png", "reliability.png"):
        assert (folder / plot).read_bytes().startswith(b"\x89PNG")
    assert len(backends) == 1


def test_too_few_negative_examples_is_refused_naming_the_setting(
    tmp_path: Path, backends: list, embedded: FeatureClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(tmp_path / "t", "dataset.size=4", "strategy.n=3", "labels.rollouts=0") == 2
    err = capsys.readouterr().err
    assert "too few examples to train the outcome head: 8 positive and 4 negative" in err
    assert "head.min_positives is 5" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy=beam"], "strategy: 'beam' does not sample plain chains"),
        (["labels.rollouts=-1"], "labels.rollouts"),
        (["features.pooling=CLS"], "features.pooling"),
        (["head.validation=1.5"], "head.validation"),
    ],
    ids=["search-strategy", "negative-rollouts", "unknown-pooling", "validation-share"],
)
def test_bad_settings_fail_before_any_backend_is_built(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str], overrides: list[str], message: str
) -> None:
    assert train(tmp_path / "t", *overrides) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert backends == []


def test_a_dataset_without_references_is_refused_before_any_backend(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"question": "What is 2 + 2?"}\n{"question": "What is 3 + 3?"}\n')
    status = main(["verifier", "train", "file", *QUIET, f"dataset.path={problems}",
                   "dataset.fields.answer=null", f"hydra.run.dir={tmp_path / 't'}"])
    assert status == 2
    assert "2 of 2 problems have no reference answer" in capsys.readouterr().err
    assert backends == []


def test_the_command_needs_its_action_and_a_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verifier", "train"]) == 2
    assert "usage: ponder verifier train DATASET" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["verifier"])
    assert exit.value.code == 2
    assert "the action is `train`" in capsys.readouterr().err
