"""Records are appended as problems finish, and a resumed run solves only what is left."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.errors import BackendDeadError, BackendError, BadRequestError
from ponder.experiments.records import RecordLog
from ponder.experiments.runner import problem_seed, solve_problems
from ponder.strategies import SamplingConfig, SelfConsistency

PROBLEMS = [(i, Problem(prompt=f"What is {i} + {i}?", reference=str(2 * i), id=f"p{i}")) for i in range(6)]
STRATEGY = SelfConsistency(n=3, sampling=SamplingConfig(max_tokens=32))


def arithmetic_backend(fail: str | None = None, dead: str | None = None, refuse: str | None = None) -> ScriptedBackend:
    """Answers 'What is A + B?' right in samples 0 and 2, wrong in sample 1."""

    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        prompt = "".join(map(chr, request.prompt_token_ids))
        a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)\?", prompt)[-1])
        if f"What is {fail} +" in prompt:
            raise BackendError("the server hung up")
        if f"What is {refuse} +" in prompt:
            raise BadRequestError("the prompt is longer than the context")
        if f"What is {dead} +" in prompt:
            raise BackendDeadError("the engine died")
        return ScriptedSample(f"Answer: {a + b + (sample == 1)}", delay=0.001)

    return ScriptedBackend(handler)


def solve(backend: ScriptedBackend, records: RecordLog, problems=PROBLEMS, done=()):
    return asyncio.run(solve_problems(
        problems, strategy=STRATEGY, backend=backend, budget=Budget(), records=records, done=done,
        seed=5, concurrency=2,
    ))


def test_every_problem_gets_a_graded_record(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    progress = solve(arithmetic_backend(), log)
    log.close()
    records = log.read()
    assert sorted(r.id for r in records) == [f"p{i}" for i in range(6)]
    assert progress.solved == 6 and progress.correct == 6
    first = next(r for r in records if r.id == "p3")
    assert (first.answer, first.grade, first.reference) == ("6", "correct", "6")
    assert [c.grade for c in first.candidates] == ["correct", "incorrect", "correct"]
    assert first.usage["generated_tokens"] == sum(c.num_tokens for c in first.candidates) > 0
    assert first.wall_seconds > 0


def test_a_resumed_run_solves_only_the_problems_without_a_record(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    solve(arithmetic_backend(), log, problems=PROBLEMS[:4])
    log.close()
    done = log.read()
    backend = arithmetic_backend()
    ids = {r.id for r in done}
    progress = solve(backend, log, problems=[(i, p) for i, p in PROBLEMS if p.id not in ids], done=done)
    log.close()
    asked = {re.findall(r"What is (\d+)", "".join(map(chr, r.prompt_token_ids)))[-1] for r in backend.requests}
    assert asked == {"4", "5"}  # p0..p3 were not asked again
    assert progress.solved == 2 and progress.graded == 6  # the running accuracy counts earlier records
    assert sorted(r.id for r in log.read()) == [f"p{i}" for i in range(6)]


def test_a_problem_gets_the_same_seed_however_the_run_is_split(tmp_path: Path) -> None:
    whole, split = arithmetic_backend(), arithmetic_backend()
    solve(whole, RecordLog(tmp_path / "a.jsonl"))
    solve(split, RecordLog(tmp_path / "b.jsonl"), problems=PROBLEMS[3:])
    seeds = lambda backend: {r.params.seed for r in backend.requests}  # noqa: E731
    assert seeds(split) <= seeds(whole)
    assert problem_seed(5, "p1") == problem_seed(5, "p1") != problem_seed(6, "p1")


def test_a_record_cut_off_mid_write_is_dropped_and_the_problem_solved_again(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    solve(arithmetic_backend(), log, problems=PROBLEMS[:2])
    log.close()
    with log.path.open("a") as file:
        file.write('{"id": "p2", "index": 2, "quest')  # the process was killed here
    assert [r.id for r in log.read()].count("p2") == 0
    assert log.path.read_text().endswith("}\n")  # the torn line is gone from the file too
    assert len(log.read()) == 2


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    log.path.write_text("not json\n")
    with pytest.raises(BadRequestError, match="line 1: not a problem record"):
        log.read()


def test_a_backend_failure_leaves_the_problem_for_the_next_run(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    progress = solve(arithmetic_backend(fail="2"), log)
    log.close()
    assert progress.failed == ["p2"]
    assert "p2" not in {r.id for r in log.read()} and len(log.read()) == 5


def test_a_problem_the_backend_rejects_as_bad_input_gets_an_error_record(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    progress = solve(arithmetic_backend(refuse="1"), log)
    log.close()
    refused = next(r for r in log.read() if r.id == "p1")
    assert (refused.answer, refused.grade, refused.candidates) == (None, "incorrect", ())
    assert "longer than the context" in refused.error
    assert progress.solved == 6 and progress.correct == 5  # it would fail again: not retried


def test_a_dead_engine_stops_the_run(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "records.jsonl")
    with pytest.raises(BackendDeadError, match="the engine died"):
        solve(arithmetic_backend(dead="0"), log)
