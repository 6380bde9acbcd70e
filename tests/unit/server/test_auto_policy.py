"""'auto' picks as documented: difficulty from probe agreement, then the most accurate profile
point for that difficulty that fits the tokens left (ties: cheaper, then earlier)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from server_helpers import answers, chat, client

from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.server.auto import choose, decide
from ponder.server.profiles import Profile, Thresholds, agreement, load_profile

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


@pytest.mark.parametrize(("difficulty", "tokens_left", "picked", "fits"), [
    ("easy", None, ("self_consistency", 16), True),       # no limit: the most accurate
    ("easy", 1000, ("self_consistency", 1), True),        # 0.90 twice: the cheaper one
    ("medium", 1000, ("self_consistency", 4), True),      # 0.60 at 400 twice: the earlier one
    ("hard", 1000, ("best_of_n", 4), True),               # hard: best-of-N beats voting here
    ("hard", 5000, ("self_consistency", 16), True),
    ("medium", 399, ("self_consistency", 1), True),       # only the cheapest fits
    ("hard", 50, ("self_consistency", 1), False),         # nothing fits: the cheapest, said so
], ids=["easy-unlimited", "easy-tie-cheaper", "medium-tie-earlier", "hard-1000", "hard-5000",
        "medium-399", "nothing-fits"])
def test_choose(difficulty: str, tokens_left: float | None, picked: tuple[str, int], fits: bool) -> None:
    choice = choose(PROFILE, difficulty, tokens_left)
    assert (choice.point.strategy["name"], choice.point.strategy["n"]) == picked
    assert choice.fits is fits
    assert difficulty in choice.reason or not fits


@pytest.mark.parametrize(("share", "bucket"), [(1.0, "easy"), (0.75, "easy"), (0.74, "medium"),
                                               (0.5, "medium"), (0.49, "hard"), (0.0, "hard")])
def test_difficulty_buckets(share: float, bucket: str) -> None:
    assert Thresholds().bucket(share) == bucket


@pytest.mark.parametrize(("answers_", "share"), [
    (["12", "12", "12.0", "13"], 0.75), (["1", "2", "3", "4"], 0.25),
    ([None, None, "5", None], 0.25), ([None] * 4, 0.0),
])
def test_agreement_counts_equivalent_answers(answers_: list[str | None], share: float) -> None:
    assert agreement(answers_) == share


@pytest.mark.parametrize(("probe_answers", "difficulty", "picked"), [
    (("12",), "easy", ("self_consistency", 1)),
    (("12", "13"), "medium", ("self_consistency", 4)),
    (("1", "2", "3", "4"), "hard", ("best_of_n", 4)),
])
async def test_decide_probes_then_chooses_and_charges_the_probes(
    probe_answers: tuple[str, ...], difficulty: str, picked: tuple[str, int],
) -> None:
    backend = answers(*probe_answers)
    ledger = Ledger(Budget(generated_tokens=1200))
    decision = await decide(Problem(prompt="6 * 2?"), Run(backend, ledger, random.Random(0)), PROFILE)
    assert decision.difficulty == difficulty
    assert (decision.strategy["name"], decision.strategy["n"]) == picked
    assert len(decision.probe_answers) == 4
    assert backend.requests[0].params.n == 4 and backend.requests[0].params.max_tokens == 128
    spent = ledger.spent.generated_tokens
    assert spent > 0 and decision.tokens_left == 1200 - spent


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


def test_the_shipped_profile_loads() -> None:
    profile = load_profile()
    assert profile.points and profile.source


def test_a_bad_profile_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"points": [{"strategy": {"name": "x"}, "generated_tokens": 1,
                                                "accuracy": {"easy": 1}}]}))
    with pytest.raises(BadRequestError, match=r"points\.0\.accuracy"):
        load_profile(path)


def _run_dir(root: Path, n: int, answers_per_problem: dict[str, list[str]], selected: dict[str, str]) -> Path:
    """A run folder as ``ponder run`` leaves it: config.yaml and records.jsonl."""
    from ponder.core.result import Candidate, Result
    from ponder.core.usage import Usage
    from ponder.experiments.records import ProblemRecord, RecordLog

    folder = root / f"n={n}"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"strategy": {"name": "self_consistency", "n": n}}))
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
