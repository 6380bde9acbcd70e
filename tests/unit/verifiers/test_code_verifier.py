"""The code verifier: program extraction, scoring against tests through the harness, the
sandbox's limits, and the audit-hook guard of the ``weak`` isolation mode (the namespace
sandbox's boundary is tested in test_sandbox_attacks.py)."""

from __future__ import annotations

import asyncio
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers import namespace
from ponder.verifiers.base import Score, verifiers
from ponder.verifiers.code import CodeTests, extract_program

SQUARE = "def f(x):\n    return x * x\n"
SQUARE_TESTS = ("assert f(2) == 4", "assert f(3) == 9")


@pytest.fixture(autouse=True)
def sandbox_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sandboxes go in a directory of their own, which must be empty after every test."""
    root = tmp_path / "sandboxes"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    assert list(root.iterdir()) == [], "a sandbox directory was left behind"


def _context() -> Run:
    return Run(backend=ScriptedBackend.from_script([]), ledger=Ledger(Budget()),
                   rng=random.Random(0))


def _candidate(text: str, index: int = 0) -> Candidate:
    return Candidate(index=index, text=text, num_tokens=len(text), finish_reason="stop")


def _fenced(program: str) -> str:
    return f"Here is the solution.\n```python\n{program}\n```\nIt squares x."


async def _score(
    program: str, tests: tuple[str, ...] = SQUARE_TESTS, **config: Any
) -> Score:
    problem = Problem(prompt="Write f.", tests=tests)
    [score] = await CodeTests(**config).score(problem, [_candidate(_fenced(program))], _context())
    return score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nx = 1\n```", "x = 1\n"),
        ("```python\nx = 1\n```\nthen\n```py\nx = 2\n```", "x = 2\n"),
        ("```python\nx = 1\n```\nexample output:\n```\n1\n```", "x = 1\n"),
        ("```\nx = 3\n```", "x = 3\n"),
        ("x = 4", "x = 4"),
        ("```python\nx = 5\nx += 1", "x = 5\nx += 1"),
        ("   \n", None),
        ("```python\n\n```", None),
    ],
    ids=["python-block", "last-python-block", "python-over-later-plain", "plain-block",
         "whole-text", "unclosed-block", "blank", "empty-block"],
)
def test_extract_program(text: str, expected: str | None) -> None:
    assert extract_program(text) == expected


def test_registered_as_code_tests() -> None:
    assert verifiers.get("code_tests") is CodeTests


@pytest.mark.parametrize(
    "config",
    [{"timeout_s": 0}, {"memory_mb": 32}, {"max_output_bytes": 0}, {"max_workers": 0},
     {"max_file_bytes": -1}, {"python": ""}, {"max_processes": 0}, {"isolation": "none"},
     {"bwrap": ""}],
    ids=["timeout", "memory", "output", "workers", "file-size", "python", "processes",
         "isolation", "bwrap"],
)
def test_rejects_bad_config(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CodeTests(**config)


async def test_correct_program_scores_one() -> None:
    assert await _score(SQUARE) == Score(1.0)


async def test_half_the_tests_failing_scores_half_and_names_the_first() -> None:
    score = await _score("def f(x):\n    return 4\n")
    assert score.value == 0.5
    assert score.reason == "1/2 tests failed; first: test 2 `assert f(3) == 9`: AssertionError"


HARNESS_CASES = {
    "shared-test-names": ("def f(x):\n    return [x] * 2\n",
                          ("expected = [3, 3]", "assert f(3) == expected", "assert len(f(1)) == 2"),
                          Score(1.0)),
    "helper-in-a-test": ("def f(x):\n    return x + 1\n",
                         ("def check(n):\n    assert f(n) == n + 1\ncheck(1)\ncheck(5)",),
                         Score(1.0)),
    "builtin-exception": ("def f(x):\n    raise ValueError('negative')\n",
                          ("try:\n    f(-1)\nexcept ValueError:\n    pass\n"
                           "else:\n    raise AssertionError",), Score(1.0)),
    "literals": ("def f(x):\n    return (x, {x}, {'k': b'v'}, None)\nLIMIT = 3\n",
                 ("assert f(1) == (1, {1}, {'k': b'v'}, None)", "assert LIMIT == 3",
                  "assert f(x=2)[0] == 2"), Score(1.0)),
    "object-result": ("class Box:\n    pass\ndef f():\n    return Box()\n",
                      ("assert f() is not None",),
                      Score(0.0, "1/1 tests failed; first: test 1 `assert f() is not None`: "
                                 "TypeError: the result of f() is not a Python literal")),
    "own-exception": ("class Oops(Exception):\n    pass\ndef f():\n    raise Oops('no')\n",
                      ("f()",), Score(0.0, "1/1 tests failed; first: test 1 `f()`: Oops: no")),
}


@pytest.mark.parametrize(("program", "tests", "expected"), HARNESS_CASES.values(),
                         ids=HARNESS_CASES.keys())
async def test_the_harness_calls_the_program_and_compares_outside(
    program: str, tests: tuple[str, ...], expected: Score
) -> None:
    assert await _score(program, tests) == expected


async def test_syntax_error_scores_zero() -> None:
    score = await _score("def f(x) return x * x")
    assert score.value == 0.0
    assert "program failed: SyntaxError" in (score.reason or "")


@pytest.mark.parametrize(
    ("program", "value", "where"),
    [("while True:\n    pass", 0.0, "the program"),
     (SQUARE + "def g():\n    while True:\n        pass\n", 0.5, "test 2")],
    ids=["loop-in-program", "loop-in-test"],
)
async def test_infinite_loop_is_killed_at_the_timeout(
    program: str, value: float, where: str
) -> None:
    started = time.monotonic()
    score = await _score(program, ("assert f(2) == 4", "assert g()"), timeout_s=1.0)
    assert time.monotonic() - started < 2.0
    assert score.value == value
    assert f"timed out after 1.0 s while running {where}" in (score.reason or "")


async def test_printing_100_mb_is_stopped_at_the_output_cap() -> None:
    program = "import sys\nfor _ in range(1600):\n    sys.stdout.write('x' * 65536)\n" + SQUARE
    started = time.monotonic()
    score = await _score(program)
    assert time.monotonic() - started < 2.0
    assert score.value == 0.0
    assert score.reason == "output limit exceeded (65536 bytes) while running the program"


@pytest.mark.parametrize(
    "connect",
    ["socket.socket().connect(('127.0.0.1', PORT))",
     "socket.create_connection(('127.0.0.1', PORT), timeout=1)"],
    ids=["connect", "create_connection"],
)
async def test_weak_mode_blocks_network_access(connect: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        program = "import socket\n" + connect.replace("PORT", str(port)) + "\n" + SQUARE
        score = await _score(program, isolation="weak")
        assert score.value == 0.0
        assert "network access blocked" in (score.reason or "")
        with pytest.raises(BlockingIOError):
            listener.accept()


@pytest.mark.parametrize(
    "operation",
    ["open(TARGET / 'escape.txt', 'w').write('x')", "os.remove(TARGET / 'keep.txt')",
     "os.rename(TARGET / 'keep.txt', 'stolen.txt')", "shutil.rmtree(TARGET)"],
    ids=["open-for-writing", "remove", "rename", "rmtree"],
)
async def test_weak_mode_blocks_writes_outside_the_directory(
    tmp_path: Path, operation: str
) -> None:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    program = f"import os, shutil\nfrom pathlib import Path\nTARGET = Path({str(target)!r})\n"
    score = await _score(program + operation + "\n" + SQUARE, isolation="weak")
    assert score.value == 0.0
    assert "write outside the sandbox directory blocked" in (score.reason or "")
    assert not (target / "escape.txt").exists()
    assert (target / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("isolation", ["namespace", "weak"])
async def test_writes_inside_the_directory_work(isolation: str) -> None:
    program = (
        "import os, tempfile\nopen('notes.txt', 'w').write('ok')\n"
        "os.mkdir('d')\nos.rename('notes.txt', 'd/notes.txt')\ntempfile.mkstemp()\n"
        "def f():\n    return open('d/notes.txt').read()\n"
    )
    assert await _score(program, ("assert f() == 'ok'",), isolation=isolation) == Score(1.0)


async def test_weak_mode_blocks_starting_processes() -> None:
    score = await _score("import subprocess\nsubprocess.run(['true'])\n" + SQUARE,
                         isolation="weak")
    assert score.value == 0.0
    assert "process creation blocked" in (score.reason or "")


@pytest.mark.parametrize("isolation", ["namespace", "weak"])
async def test_environment_holds_no_secrets(
    monkeypatch: pytest.MonkeyPatch, isolation: str
) -> None:
    monkeypatch.setenv("PONDER_TEST_SECRET", "hunter2")
    program = ("import os\ndef env(name):\n    return os.environ.get(name)\n"
               "def cwd():\n    return os.getcwd()\n")
    tests = ("assert env('PONDER_TEST_SECRET') is None",
             "assert env('HOME') == cwd() == env('TMPDIR')")
    assert await _score(program, tests, isolation=isolation) == Score(1.0)


async def test_memory_limit() -> None:
    score = await _score("block = bytearray(512 * 2**20)\n" + SQUARE, memory_mb=128)
    assert score.value == 0.0
    assert score.reason == "program failed: MemoryError"


async def test_program_exiting_early_fails_the_tests_it_did_not_reach() -> None:
    score = await _score(SQUARE + "def g():\n    os._exit(3)\nimport os\n",
                         ("assert f(2) == 4", "g()", "assert f(3) == 9"))
    assert score.value == pytest.approx(1 / 3)
    assert score.reason == "exited with status 3 while running test 2 `g()`"


async def test_missing_interpreter_cannot_be_scored() -> None:
    score = await _score(SQUARE, python="/nonexistent/python")
    assert score.value is None
    assert "could not start the sandbox" in (score.reason or "")


async def test_cancelling_kills_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sandbox's one-off trial of bwrap runs first, so that the spy sees only these two
    # (in a process where no earlier test has started a sandbox, it would be a third).
    await namespace.problem_with(namespace.default_bwrap())
    started: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def spy(*args: object, **kwargs: object) -> asyncio.subprocess.Process:
        started.append(await spawn(*args, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    task = asyncio.create_task(_score("import time\ntime.sleep(30)\n" + SQUARE))
    while len(started) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(started) == 2  # the harness and the program
    assert all(p.returncode not in (None, 0) for p in started)


async def _time_batch(count: int, workers: int) -> tuple[float, list[Score]]:
    """Score ``count`` distinct candidates that each sleep 0.4 s."""
    problem = Problem(prompt="Write f.", tests=SQUARE_TESTS)
    candidates = [_candidate(_fenced(f"import time\ntime.sleep(0.4)  # {i}\n{SQUARE}"), i)
                  for i in range(count)]
    started = time.monotonic()
    scores = await CodeTests(max_workers=workers).score(problem, candidates, _context())
    return time.monotonic() - started, scores


async def test_candidates_run_concurrently() -> None:
    elapsed, scores = await _time_batch(16, workers=16)
    assert scores == [Score(1.0)] * 16
    assert elapsed < 16 * 0.4 / 2


async def test_max_workers_bounds_concurrency() -> None:
    elapsed, scores = await _time_batch(4, workers=2)
    assert scores == [Score(1.0)] * 4
    assert elapsed >= 2 * 0.4


async def test_no_program_found_scores_zero() -> None:
    problem = Problem(prompt="Write f.", tests=SQUARE_TESTS)
    scores = await CodeTests().score(problem, [_candidate("```python\n```")], _context())
    assert scores == [Score(0.0, "no program found")]


async def test_problem_without_tests_is_not_scored() -> None:
    scores = await CodeTests().score(Problem(prompt="Write f."), [_candidate(SQUARE)], _context())
    assert scores == [Score(None, "problem has no tests")]
