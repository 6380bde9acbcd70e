"""The code verifier: run each candidate's program against the problem's tests and score the
fraction that pass.

Each candidate's program runs in its own sandbox (``ponder.verifiers.sandbox``: bubblewrap
namespaces by default, time, memory, process, output and file limits); the verifier's fields
are the sandbox's. The tests run apart from the program, in the trusted harness
(``_test_harness``), which calls the program's functions with literal arguments, gets their
results back as literals and makes the comparisons itself: a program can pass a test only
by returning what the test expects, never by writing a verdict. A test the run never reached
(a loop, a kill) counts as failed. Where no namespace sandbox can start, scoring raises
SandboxUnavailableError unless ``isolation: weak`` names the audit-hook mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier, verifiers
from ponder.verifiers.sandbox import Sandbox, SandboxRun, exit_reason, extract_program

__all__ = ["CodeTests", "extract_program"]


@verifiers.register("code_tests")
class CodeTests(Verifier, Sandbox):
    """Score = the fraction of ``problem.tests`` the candidate's program passes."""

    scores_partial_paths: ClassVar[bool] = False

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        if not problem.tests:
            return [Score(None, "problem has no tests")] * len(candidates)
        programs = [extract_program(c.text) for c in candidates]
        found = [p for p in programs if p is not None]
        runs = iter(await self.run_all(found, problem.tests))
        return [
            Score(0.0, "no program found") if program is None
            else _verdict(run, problem.tests) if isinstance(run := next(runs), SandboxRun)
            else Score(None, run)
            for program in programs
        ]


def _verdict(run: SandboxRun, tests: Sequence[str]) -> Score:
    """Tests passed / tests, a test the run never reached counting as failed; the reason
    names the program's error, the first failing test, and what cut the run short."""
    if not run.started:
        return Score(None, run.failure())
    program = run.program_stage
    errors = {s["index"]: s["error"] for s in run.stages if s.get("stage") == "test"}
    failed = sorted(index for index, error in errors.items() if error is not None)
    notes = []
    if program is not None and program["error"] is not None:
        notes.append(f"program failed: {program['error']}")
    elif failed:
        first = failed[0]
        notes.append(
            f"{len(failed)}/{len(tests)} tests failed; first: {_name(tests, first)}: "
            f"{errors[first]}"
        )
    if program is None or (program["error"] is None and len(errors) < len(tests)):
        where = "the program" if program is None else _name(tests, len(errors))
        notes.append(f"{run.stopped or exit_reason(run.returncode)} while running {where}")
    passed = sum(error is None for error in errors.values())
    return Score(passed / len(tests), "; ".join(notes) or None)


def _name(tests: Sequence[str], index: int) -> str:
    line = " ".join(tests[index].split())
    return f"test {index + 1} `{line if len(line) <= 80 else line[:77] + '...'}`"
