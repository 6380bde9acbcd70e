"""The code verifier: run each candidate's program against the problem's tests and score the
fraction that pass.

Every candidate runs in its own sandbox process, started without blocking the event loop:

- ``python -I -B`` (isolated: no user site, no ``PYTHON*`` variables, no bytecode written)
  in a fresh temporary directory that is its cwd, HOME and TMPDIR, removed afterwards;
- an environment of PATH, HOME, TMPDIR and LANG only, so no keys or tokens leak in;
- a wall-clock timeout, after which the whole process group is killed;
- limits on address space, CPU time and written file size, set by the runner script itself
  (``preexec_fn`` is unsafe in a threaded parent such as an inference engine);
- stdout and stderr read in chunks and counted, and the process killed once they pass the
  cap, so a print loop never fills memory;
- an audit hook (see ``_code_runner``) refusing network access, new processes and writes
  outside the directory. Results come back in a file the program cannot open, never on
  stdout, which the program controls.

What this does not guarantee: the audit hook is a guard against accidents and naive code,
not a security boundary against hostile code (ctypes and descriptor tricks get past it),
and the program can read whatever the calling user can read. ``isolate_network=True`` adds a
real network namespace (``unshare --net``); untrusted code belongs in a container or VM.
RLIMIT_NPROC is not set: it counts every process of the user (so it breaks unrelated work)
and is not enforced for root; the hook refuses process creation instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier, verifiers

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = frozenset({"py", "python", "python3"})
_RUNNER = Path(__file__).with_name("_code_runner.py")
_CHUNK_BYTES = 64 * 1024
_STDERR_TAIL_BYTES = 1000


def extract_program(text: str) -> str | None:
    """The last ```python block, else the last fenced block, else the whole text; None when
    that is blank. The last, because a chain often shows a draft before its final program; an
    unclosed block (a chain cut off by the token limit) runs to the end of the text."""
    blocks = [(match[1].lower(), match[2]) for match in _FENCE.finditer(text)]
    python = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    program = (python or [body for _, body in blocks] or [text])[-1]
    return program if program.strip() else None


@dataclass(frozen=True)
class _Run:
    """What one sandbox run left behind."""

    stages: list[dict[str, Any]]
    """The runner's reports, in order: ready, program, then one per test reached."""
    returncode: int | None
    stopped: str | None
    """Why the verifier cut the run short (timeout, output cap), if it did."""
    stderr_tail: str


class _Output:
    """Counts what the program writes to stdout and stderr together, keeping only stderr's
    tail, and kills the program once the total passes the cap."""

    def __init__(self, limit: int, pid: int) -> None:
        self.limit, self.pid = limit, pid
        self.total = 0
        self.exceeded = False
        self.stderr_tail = b""

    async def drain(self, stream: asyncio.StreamReader, *, keep_tail: bool = False) -> None:
        while chunk := await stream.read(_CHUNK_BYTES):
            self.total += len(chunk)
            if keep_tail:
                self.stderr_tail = (self.stderr_tail + chunk)[-_STDERR_TAIL_BYTES:]
            if self.total > self.limit:
                self.exceeded = True
                _kill_group(self.pid)
                return


@verifiers.register("code_tests")
class CodeTests(Verifier):
    """Score = the fraction of ``problem.tests`` the candidate's program passes."""

    scores_partial_paths: ClassVar[bool] = False

    timeout_s: float = Field(
        5.0, gt=0, description="Wall-clock seconds per program; then its process group is killed."
    )
    memory_mb: int = Field(
        1024, ge=64, description="Address-space limit (RLIMIT_AS) in MiB: virtual, not resident."
    )
    max_output_bytes: int = Field(
        64 * 1024, ge=1, description="stdout plus stderr a program may write before it is killed."
    )
    max_file_bytes: int = Field(
        16 * 2**20, ge=0, description="Largest file a program may write (RLIMIT_FSIZE)."
    )
    max_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1,
        description="Programs run at once (default: the number of CPUs).",
    )
    python: str = Field(
        default_factory=lambda: sys.executable, min_length=1,
        description="The interpreter that runs the programs; its installed packages import.",
    )
    isolate_network: bool = Field(
        False,
        description="Also run in a new network namespace (``unshare --map-root-user --net``): "
        "real isolation where the kernel allows user namespaces; fails to start otherwise.",
    )

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        if not problem.tests:
            return [Score(None, "problem has no tests")] * len(candidates)
        slots = asyncio.Semaphore(self.max_workers)

        async def score_one(candidate: Candidate) -> Score:
            program = extract_program(candidate.text)
            if program is None:
                return Score(0.0, "no program found")
            async with slots:
                run = await self._run(program, problem.tests)
            return run if isinstance(run, Score) else _verdict(run, problem.tests)

        return list(await asyncio.gather(*(score_one(c) for c in candidates)))

    async def _run(self, program: str, tests: Sequence[str]) -> _Run | Score:
        """Run ``program`` and ``tests`` in a sandbox; a Score(None) if it cannot start."""
        with tempfile.TemporaryDirectory(prefix="ponder-code-") as tmp:
            root = Path(tmp)
            work, job, results = root / "work", root / "job.json", root / "results.jsonl"
            work.mkdir()
            job.write_text(json.dumps({
                "program": program, "tests": list(tests), "results": str(results),
                "memory_bytes": self.memory_mb * 2**20,
                "cpu_seconds": math.ceil(self.timeout_s) + 1,
                "file_bytes": self.max_file_bytes,
            }), encoding="utf-8")
            command = [self.python, "-I", "-B", str(_RUNNER), str(job)]
            if self.isolate_network:
                command = ["unshare", "--map-root-user", "--net", *command]
            try:
                process = await asyncio.create_subprocess_exec(
                    *command, cwd=work, env=_environment(work), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as exc:
                return Score(None, f"could not start the sandbox: {exc}")
            assert process.stdout is not None and process.stderr is not None  # both piped
            output = _Output(self.max_output_bytes, process.pid)
            stopped = None
            try:
                async with asyncio.timeout(self.timeout_s):
                    await asyncio.gather(
                        output.drain(process.stdout), output.drain(process.stderr, keep_tail=True),
                        process.wait(),
                    )
            except TimeoutError:
                stopped = f"timed out after {self.timeout_s} s"
            finally:
                if process.returncode is None:
                    _kill_group(process.pid)
                    await process.wait()
            if output.exceeded:
                stopped = f"output limit exceeded ({self.max_output_bytes} bytes)"
            return _Run(
                _read_stages(results), process.returncode, stopped,
                output.stderr_tail.decode(errors="replace"),
            )


def _verdict(run: _Run, tests: Sequence[str]) -> Score:
    """Tests passed / tests, a test the run never reached counting as failed; the reason
    names the program's error, the first failing test, and what cut the run short."""
    if not any(stage.get("stage") == "ready" for stage in run.stages):
        why = ": ".join(filter(None, [run.stopped or _exit_reason(run.returncode),
                                       run.stderr_tail.strip()]))
        return Score(None, f"the sandbox did not start ({why})")
    program = next((s for s in run.stages if s.get("stage") == "program"), None)
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
        notes.append(f"{run.stopped or _exit_reason(run.returncode)} while running {where}")
    passed = sum(error is None for error in errors.values())
    return Score(passed / len(tests), "; ".join(notes) or None)


def _read_stages(path: Path) -> list[dict[str, Any]]:
    """The runner's reports; a line cut short by a kill is skipped."""
    if not path.exists():
        return []
    stages = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            stages.append(json.loads(line))
    return [stage for stage in stages if isinstance(stage, dict)]


def _name(tests: Sequence[str], index: int) -> str:
    line = " ".join(tests[index].split())
    return f"test {index + 1} `{line if len(line) <= 80 else line[:77] + '...'}`"


def _exit_reason(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by signal {-returncode} ({signal.strsignal(-returncode)})"
    return f"exited with status {returncode}"


def _environment(work: Path) -> dict[str, str]:
    """Only what a program needs: nothing inherited but PATH, so no keys or tokens."""
    return {
        "PATH": os.environ.get("PATH", os.defpath), "HOME": str(work), "TMPDIR": str(work),
        "LANG": "C.UTF-8",
    }


def _kill_group(pid: int) -> None:
    """SIGKILL the program and anything it started (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
