"""``ponder run strategy=auto``: the profile's model is checked against the run's backend config
before any backend is built, and a run with a matching profile solves with the probe counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.cli import main
from ponder.strategies.profile import load_profile

QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none", "progress=false", "dataset.size=2"]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The config of every backend the app builds (each answers 'Answer: 7')."""
    specs: list[dict] = []

    async def build(spec: dict) -> ScriptedBackend:
        specs.append(dict(spec))
        return ScriptedBackend(lambda request, sample, call: ScriptedSample("Answer: 7"))

    monkeypatch.setattr("ponder.backends.pool.open_backend", build)
    return specs


def profile_for(folder: Path, model: str) -> Path:
    """The shipped profile, made for ``model``, probing in words (which the scripted answers
    are; the chosen strategy then samples all its own chains)."""
    path = folder / "profile.yaml"
    shipped = load_profile().model_dump(mode="json")
    path.write_text(yaml.safe_dump({**shipped, "model": model, "probe_format": "words"}))
    return path


def run(folder: Path, *overrides: str) -> int:
    return main(["run", *QUIET, f"hydra.run.dir={folder}", "strategy=auto", *overrides])


def test_a_profile_for_another_model_is_refused_before_any_backend_is_built(
    tmp_path: Path, built: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    profile = profile_for(tmp_path, "qwen3-8b")
    assert run(tmp_path / "run", f"strategy.profile={profile}") == 2
    err = capsys.readouterr().err
    assert f"error: profiles ({profile}): made for model 'qwen3-8b', not 'embedded'" in err
    assert "Traceback" not in err and built == []


def test_force_profile_runs_it_and_the_records_say_what_auto_chose(tmp_path: Path, built: list[dict]) -> None:
    profile = profile_for(tmp_path, "qwen3-8b")
    folder = tmp_path / "run"
    assert run(folder, f"strategy.profile={profile}", "strategy.force_profile=true") == 0
    assert len(built) == 1
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        auto = record["details"]["auto"]
        assert auto["difficulty"] == "easy" and auto["probe_answers"] == ["7"] * 4
        chains = sum(c["num_tokens"] for c in record["candidates"])
        assert record["usage"]["generated_tokens"] == chains + 4 * len("Answer: 7")
