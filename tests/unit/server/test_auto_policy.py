"""'auto' through the endpoint (the policy itself: tests/unit/strategies/test_auto.py), the
profiles a server refuses at start-up, and profiles made from experiment runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from server_helpers import answers, chat, client

from ponder.cli import main
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.server import ServerSettings, create_app
from ponder.strategies.profile import Profile

PROFILE = Profile(points=(
    {"strategy": {"name": "self_consistency", "n": 1}, "generated_tokens": 100,
     "accuracy": {"easy": 0.90, "medium": 0.40, "hard": 0.10}},
    {"strategy": {"name": "self_consistency", "n": 4}, "generated_tokens": 400,
     "accuracy": {"easy": 0.90, "medium": 0.60, "hard": 0.15}},
    {"strategy": {"name": "self_consistency", "n": 16}, "generated_tokens": 1600,
     "accuracy": {"easy": 0.92, "medium": 0.70, "hard": 0.30}},
    {"strategy": {"name": "best_of_n", "n": 4}, "generated_tokens": 400,
     "accuracy": {"easy": 0.85, "medium": 0.60, "hard": 0.20}},
))


async def test_auto_through_the_endpoint_says_what_and_why(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(PROFILE.model_dump(mode="json")))
    async with client(answers("12"), profiles=path) as http:
        body = (await http.post("/v1/chat/completions", json=chat(
            strategy="auto", budget={"generated_tokens": 1000}, trace=True))).json()
    auto = body["ponder"]["auto"]
    assert auto["difficulty"] == "easy" and auto["strategy"] == {"name": "self_consistency", "n": 1}
    assert "best profiled accuracy" in auto["reason"]
    # usage covers the probes (4 chains) and the chosen run (1 chain), 24 tokens each
    assert body["usage"]["completion_tokens"] == 5 * 24
    assert len(body["ponder"]["trace"]["candidates"]) == 1


def test_the_server_refuses_at_start_up_profiles_made_for_another_model(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**PROFILE.model_dump(mode="json"), "model": "qwen3-8b"}))
    backend = answers("12")
    backend.model = "embedded"
    with pytest.raises(BadRequestError, match="made for model 'qwen3-8b', not 'embedded'"):
        create_app(ServerSettings(profiles=path), backend=backend)
    create_app(ServerSettings(profiles=path, force_profile=True), backend=backend)


def test_ponder_serve_refuses_them_before_it_listens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**PROFILE.model_dump(mode="json"), "model": "qwen3-8b"}))
    assert main(["serve", "backend=embedded", "--port", "0", "--profiles", str(path)]) == 2
    err = capsys.readouterr().err
    assert "made for model 'qwen3-8b', not 'embedded'" in err and "listening on" not in err


def _run_dir(root: Path, n: int, answers_per_problem: dict[str, list[str]], selected: dict[str, str],
             model: str = "embedded") -> Path:
    """A run folder as ``ponder run`` leaves it: config.yaml and records.jsonl."""
    from ponder.core.result import Candidate, Result
    from ponder.core.usage import Usage
    from ponder.experiments.records import ProblemRecord, RecordLog

    folder = root / f"n={n}"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "strategy": {"name": "self_consistency", "n": n}, "backend": {"kind": "vllm", "model": model}}))
    log = RecordLog(folder / "records.jsonl")
    for index, (pid, answers_) in enumerate(answers_per_problem.items()):
        candidates = [Candidate(i, f"Answer: {a}", 10, "stop", a) for i, a in enumerate(answers_[:n])]
        chosen = next(i for i, c in enumerate(candidates) if c.answer == selected[pid])
        result = Result("self_consistency", candidates, chosen, Usage(generated_tokens=10 * n))
        log.append(ProblemRecord.from_result(index, Problem(prompt=pid, reference="1", id=pid), result))
    log.close()
    return folder


def test_a_profile_from_runs_buckets_by_the_widest_runs_first_answers(tmp_path: Path) -> None:
    # easy: the first 4 answers agree; hard: they all differ
    answers_ = {"easy": ["1", "1", "1", "1"], "hard": ["1", "2", "3", "4"]}
    one = _run_dir(tmp_path, 1, answers_, {"easy": "1", "hard": "1"})
    four = _run_dir(tmp_path, 4, answers_, {"easy": "1", "hard": "2"})
    from ponder.server.profiles import profile_from_runs

    profile = profile_from_runs([one, four])
    assert [p.strategy["n"] for p in profile.points] == [1, 4]
    assert [p.generated_tokens for p in profile.points] == [10, 40]
    # no problem is medium: that bucket gets the run's overall accuracy
    assert profile.points[0].accuracy == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert profile.points[1].accuracy == {"easy": 1.0, "medium": 0.5, "hard": 0.0}
    assert profile.source.startswith("2 problems (easy: 1, medium: 0, hard: 1)")
    assert profile.model == "embedded"  # the runs' backend.model


def test_a_profile_from_runs_of_two_models_is_refused(tmp_path: Path) -> None:
    answers_ = {"easy": ["1", "1", "1", "1"]}
    one = _run_dir(tmp_path, 1, answers_, {"easy": "1"})
    four = _run_dir(tmp_path, 4, answers_, {"easy": "1"}, model="qwen3-8b")
    from ponder.server.profiles import profile_from_runs

    with pytest.raises(BadRequestError, match=r"different models \(embedded, qwen3-8b\)"):
        profile_from_runs([one, four])
