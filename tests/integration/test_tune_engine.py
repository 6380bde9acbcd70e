"""``ponder tune`` on the real engine, as a user runs it: a tiny study writes its fronts, plot and
profile, and the profile is one that strategy 'auto' and the endpoint take; with joblib's
workers, the trials of one study run in two processes and land in its one database."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import optuna
import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.server import ServerSettings, create_app
from ponder.strategies.profile import load_profile

pytestmark = pytest.mark.integration

PONDER = Path(sys.executable).with_name("ponder")
# Two arms whose answers are short (one-choice parameters fix max_tokens), so a trial is quick.
SPACE = [
    "~space",
    "+space.sc.strategy=self_consistency", "+space.sc.params.n=[1,2]",
    "+space.sc.params.sampling.max_tokens=[64]",
    "+space.mk.strategy=short_mk", "+space.mk.params.k=[2,3]", "+space.mk.params.m=[1]",
    "+space.mk.params.sampling.max_tokens=[64]",
]


def ponder_tune(study: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [str(PONDER), "tune", *SPACE, f"tune.study={study}", "dataset=arithmetic", "progress=false",
         "tune.probe.tokens=32", *overrides],
        cwd=study.parent, capture_output=True, text=True, timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def completed_trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    loaded = optuna.load_study(study_name="ponder", storage=f"sqlite:///{study / 'study.db'}")
    return [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    study = tmp_path_factory.mktemp("tune") / "study"
    return study, ponder_tune(study, "dataset.size=8", "tune.trials=6").stdout


def test_a_tiny_study_writes_its_front_plot_and_profile(tiny_study: tuple[Path, str]) -> None:
    study, out = tiny_study
    assert len(completed_trials(study)) == 6
    for name in ("front.txt", "trials.csv", "fronts.png", "profile.yaml"):
        assert (study / name).stat().st_size > 0, name
    assert "difficulty predictor:" in out and str(study / "profile.yaml") in out
    trials = (study / "trials.csv").read_text().splitlines()
    assert len(trials) >= 2  # a header and at least one distinct config (the sampler may repeat one)
    profile = load_profile(study / "profile.yaml", model="embedded")
    assert profile.model == "embedded" and profile.source.startswith("ponder tune:")
    assert {p.strategy["name"] for p in profile.points} <= {"self_consistency", "short_mk"}
    assert all(p.strategy["sampling"]["max_tokens"] == 64 for p in profile.points)


@pytest.mark.asyncio(loop_scope="session")
async def test_auto_chooses_from_the_tuned_profile(tiny_study: tuple[Path, str], engine: VllmBackend) -> None:
    study, _ = tiny_study
    profile = load_profile(study / "profile.yaml")
    result = await asolve("What is 4 + 5?", strategy={"name": "auto", "profile": str(study / "profile.yaml")},
                          backend=engine)
    chosen = result.details["auto"]["strategy"]
    assert chosen in [p.strategy for p in profile.points]
    assert len(result.details["auto"]["probe_answers"]) == profile.probe_samples


@pytest.mark.asyncio(loop_scope="session")
async def test_the_endpoint_serves_auto_with_the_tuned_profile(
    tiny_study: tuple[Path, str], engine: VllmBackend
) -> None:
    study, _ = tiny_study
    app = create_app(ServerSettings(profiles=study / "profile.yaml"), backend=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ponder.test",
                                 timeout=300) as http:
        response = await http.post("/v1/chat/completions", json={
            "model": "ponder", "messages": [{"role": "user", "content": "What is 4 + 5?"}],
            "strategy": "auto", "budget": {"generated_tokens": 2000},
        })
    assert response.status_code == 200, response.text
    auto = response.json()["ponder"]["auto"]
    assert auto["strategy"] in [p.strategy for p in load_profile(study / "profile.yaml").points]


def test_joblib_runs_the_trials_of_one_study_in_two_workers(tmp_path: Path) -> None:
    study = tmp_path / "study"
    ponder_tune(study, "dataset.size=4", "tune.trials=2", "tune.jobs=2",
                "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert len(completed_trials(study)) == 2
    logs = [log.read_text() for log in (study / "trials").glob("*/run.log")]
    pids = [re.findall(r"engine: started in process (\d+)", log) for log in logs]
    # each trial folder is solved once, in its worker, by an engine of its own
    assert all(len(found) == 1 for found in pids) and len({p for (p,) in pids}) == len(logs)
