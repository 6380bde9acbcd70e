"""``ponder tune`` in-process over a scripted backend: a whole study through Hydra's Optuna
sweeper (probe, trials, fronts, profile), resuming it, and bad input refused before any
backend exists."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from statistics import fmean

import optuna
import pytest

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.cli import main
from ponder.core.generation import GenerationRequest
from ponder.strategies.profile import agreement, load_profile

QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none", "progress=false"]
SPACE = ["~space", "+space.sc.strategy=self_consistency", "+space.sc.params.n=[1,2,4]",
         "+space.mk.strategy=short_mk", "+space.mk.params.k=[3,4]"]


class GradedBackend(ScriptedBackend):
    """Problem p is solved by a share of samples that depends on p (some problems are easy,
    some hard); a right answer is generated with more certainty (a higher logprob)."""

    def __init__(self) -> None:
        super().__init__(self.answer)

    @staticmethod
    def answer(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        prompt = "".join(map(chr, request.prompt_token_ids))
        expression = re.findall(r"What is ([\d +\-*/()]+)\?", prompt)[-1]
        value = eval(expression.replace("/", "//"))
        hardness = zlib.crc32(expression.encode()) % 4  # 0: every sample right, 3: one in four
        right = sample % 4 >= hardness
        text = f"Answer: {value if right else value + 1 + sample}"
        return ScriptedSample(text, logprobs=[-0.05 if right else -1.5] * len(text))


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> list[GradedBackend]:
    built: list[GradedBackend] = []

    async def build(spec: dict) -> GradedBackend:
        built.append(GradedBackend())
        return built[-1]

    monkeypatch.setattr("ponder.backends.pool.open_backend", build)
    return built


def tune(study: Path, *overrides: str) -> int:
    return main(["tune", *QUIET, *SPACE, f"tune.study={study}", "dataset.size=12", *overrides])


def completed(study: Path) -> int:
    loaded = optuna.load_study(study_name="ponder", storage=f"sqlite:///{study / 'study.db'}")
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in loaded.trials)


def test_a_study_writes_fronts_and_a_profile_auto_can_load(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    assert tune(study, "tune.trials=4") == 0
    out = capsys.readouterr().out
    assert "difficulty predictor:" in out and "profile.yaml" in out
    assert completed(study) == 4
    assert len(backends) == 1  # the probe's engine served every sequential trial
    for name in ("front.txt", "trials.csv", "fronts.png", "profile.yaml", "study.json"):
        assert (study / name).exists(), name
    probe = [json.loads(line) for line in (study / "probe" / "records.jsonl").read_text().splitlines()]
    assert len(probe) == 12 and all(len(r["candidates"]) == 4 for r in probe)
    assert all(c["score"] is not None for r in probe for c in r["candidates"])

    profile = load_profile(study / "profile.yaml")
    assert profile.model == "embedded" and set(profile.predictor_fit) == {"agreement", "score"}
    # A right answer is more certain here, so the mean score tells difficulty at least as well.
    assert profile.predictor_fit["score"] >= profile.predictor_fit["agreement"]
    trials = (study / "trials.csv").read_text().splitlines()[1:]
    strategies = {p.strategy["name"] for p in profile.points}
    assert strategies <= {"self_consistency", "short_mk"} and 1 <= len(profile.points) <= len(trials)
    tokens = [p.generated_tokens for p in profile.points]
    assert tokens == sorted(tokens)
    assert profile.token_price == 0.5  # tune.token_price's default

    # Accuracies are per bucket as the predictor calls each problem: all 'auto' will know.
    def feature(record: dict) -> float:
        if profile.predictor == "agreement":
            return agreement([c["answer"] for c in record["candidates"]])
        return min(max(fmean(c["score"] for c in record["candidates"]), 0.0), 1.0)

    def ran(folder: Path) -> dict:
        strategy = json.loads((folder / "summary.json").read_text())["config"]["strategy"]
        strategy.get("program", {}).get("sandbox", {}).pop("python", None)  # the profile leaves it out
        return strategy

    called = {r["id"]: profile.thresholds.bucket(feature(r)) for r in probe}
    for point in profile.points:
        assert "python" not in point.strategy.get("program", {}).get("sandbox", {})
        folder = next(f for f in (study / "trials").iterdir() if f.is_dir() and ran(f) == point.strategy)
        records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
        for bucket, accuracy in point.accuracy.items():
            grades = [r["grade"] == "correct" for r in records if called[r["id"]] == bucket]
            if grades:
                assert accuracy == round(sum(grades) / len(grades), 3), (point.strategy, bucket)


def test_the_same_command_resumes_and_a_larger_study_runs_only_the_missing_trials(
    tmp_path: Path, backends: list
) -> None:
    study = tmp_path / "study"
    assert tune(study, "tune.trials=2") == 0
    requests = sum(len(b.requests) for b in backends)
    assert tune(study, "tune.trials=2") == 0  # done: no trial, no request, results again
    assert completed(study) == 2 and sum(len(b.requests) for b in backends) == requests
    assert tune(study, "tune.trials=2", "tune.token_price=0.3") == 0  # re-priced, nothing run
    assert sum(len(b.requests) for b in backends) == requests
    assert load_profile(study / "profile.yaml").token_price == 0.3
    assert tune(study, "tune.trials=3") == 0
    assert completed(study) == 3


def test_another_study_in_the_folder_is_refused(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    assert tune(study, "tune.trials=1") == 0
    capsys.readouterr()
    assert tune(study, "tune.trials=1", "dataset.size=13") == 2
    assert "holds a study with other dataset" in capsys.readouterr().err


@pytest.mark.parametrize(("overrides", "message"), [
    (["~space"], "space: the search space is empty"),
    (["+space.beam.strategy=beam", "+space.beam.params.width=[2]"],
     "space.beam.params.width: the strategy 'beam' has no such parameter"),
    (["tune.trials=0"], "tune.trials"),
    (["tune.probe.samples=1"], "tune.probe.samples"),
])
def test_bad_input_is_refused_before_any_backend(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str], overrides: list[str], message: str
) -> None:
    assert main(["tune", *QUIET, f"tune.study={tmp_path / 's'}", "dataset.size=4", *overrides]) == 2
    assert message in capsys.readouterr().err
    assert backends == [] and not (tmp_path / "s").exists()


def test_a_tuning_split_without_references_is_refused(
    tmp_path: Path, backends: list, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "questions.jsonl"
    data.write_text('{"question": "What is 1 + 1?"}\n{"question": "What is 2 + 2?"}\n')
    assert main(["tune", *QUIET, *SPACE, f"tune.study={tmp_path / 's'}", "dataset=file",
                 f"dataset.path={data}", "dataset.fields.answer=null"]) == 2
    assert "dataset: 2 of 2 problems have no reference answer" in capsys.readouterr().err
    assert backends == []
