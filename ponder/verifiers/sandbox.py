"""The code sandbox: run a model-written Python program in a process of its own, under limits.

Every program runs without blocking the event loop:

- ``python -I -B`` (isolated: no user site, no ``PYTHON*`` variables, no bytecode written)
  in a fresh temporary directory that is its cwd, HOME and TMPDIR, removed afterwards;
- an environment of PATH, HOME, TMPDIR and LANG only, so no keys or tokens leak in;
- a wall-clock timeout, after which the whole process group is killed;
- limits on address space, CPU time and written file size, set by the runner script itself
  (``preexec_fn`` is unsafe in a threaded parent such as an inference engine);
- stdout and stderr read in chunks and counted, and the process killed once they pass the
  cap, so a print loop never fills memory;
- an audit hook (see ``_code_runner``) refusing network access, new processes and writes
  outside the directory. The runner's reports come back in a file the program cannot open,
  never on stdout, which the program controls.

Two users: the code verifier (a program plus tests, scored by the tests that pass) and
program-of-thought chains (a program whose printed output is the chain's answer).

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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = frozenset({"py", "python", "python3"})
_RUNNER = Path(__file__).with_name("_code_runner.py")
_CHUNK_BYTES = 64 * 1024
_STDERR_TAIL_BYTES = 1000


def extract_program(text: str) -> str | None:
    """The last ```python block, else the last fenced block, else the whole text; None when
    that is blank. The last, because a chain often shows a draft before its final program; an
    unclosed block (a chain cut off by the token limit or a stop string) runs to the end of
    the text."""
    blocks = [(match[1].lower(), match[2]) for match in _FENCE.finditer(text)]
    python = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    program = (python or [body for _, body in blocks] or [text])[-1]
    return program if program.strip() else None


@dataclass(frozen=True)
class SandboxRun:
    """What one sandbox run left behind."""

    stages: list[dict[str, Any]]
    """The runner's reports, in order: ready, program, then one per test reached."""
    returncode: int | None
    stopped: str | None
    """Why the sandbox cut the run short (timeout, output cap), if it did."""
    stdout: str
    """What the program printed (up to the output cap)."""
    stderr_tail: str

    @property
    def started(self) -> bool:
        return any(stage.get("stage") == "ready" for stage in self.stages)

    @property
    def program_stage(self) -> dict[str, Any] | None:
        return next((s for s in self.stages if s.get("stage") == "program"), None)

    def failure(self) -> str | None:
        """Why the program did not run to its end: the sandbox never started, the program
        raised, or it was cut short; None when it ran through."""
        if not self.started:
            why = ": ".join(filter(None, [self.stopped or exit_reason(self.returncode),
                                           self.stderr_tail.strip()]))
            return f"the sandbox did not start ({why})"
        program = self.program_stage
        if program is not None and program["error"] is not None:
            return f"program failed: {program['error']}"
        if program is None:
            return f"{self.stopped or exit_reason(self.returncode)} while running the program"
        return None


class _Output:
    """Counts what the program writes to stdout and stderr together, keeping stdout (up to
    the cap) and stderr's tail, and kills the program once the total passes the cap."""

    def __init__(self, limit: int, pid: int) -> None:
        self.limit, self.pid = limit, pid
        self.total = 0
        self.exceeded = False
        self.stdout = b""
        self.stderr_tail = b""

    async def drain(self, stream: asyncio.StreamReader, *, stderr: bool = False) -> None:
        while chunk := await stream.read(_CHUNK_BYTES):
            self.total += len(chunk)
            if stderr:
                self.stderr_tail = (self.stderr_tail + chunk)[-_STDERR_TAIL_BYTES:]
            else:
                self.stdout = (self.stdout + chunk)[: self.limit]
            if self.total > self.limit:
                self.exceeded = True
                kill_group(self.pid)
                return


class Sandbox(BaseModel):
    """Limits of one sandboxed program run, and the runner that applies them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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

    async def run_all(
        self, programs: Sequence[str], tests: Sequence[str] = (), *, as_main: bool = False,
        timeout_s: float | None = None,
    ) -> list[SandboxRun | str]:
        """Run every program (``max_workers`` at a time), each then its ``tests``; a string
        (the reason) for a program whose sandbox could not start. ``as_main`` runs the program
        as ``__main__`` (a script that prints its answer); ``timeout_s`` shortens the limit
        (the caller's deadline), never lengthens it."""
        slots = asyncio.Semaphore(self.max_workers)
        limit = self.timeout_s if timeout_s is None else max(min(self.timeout_s, timeout_s), 0.01)

        async def run_one(program: str) -> SandboxRun | str:
            async with slots:
                return await self._run(program, tests, as_main, limit)

        return list(await asyncio.gather(*(run_one(p) for p in programs)))

    async def _run(
        self, program: str, tests: Sequence[str], as_main: bool, timeout_s: float
    ) -> SandboxRun | str:
        with tempfile.TemporaryDirectory(prefix="ponder-code-") as tmp:
            root = Path(tmp)
            work, job, results = root / "work", root / "job.json", root / "results.jsonl"
            work.mkdir()
            job.write_text(json.dumps({
                "program": program, "tests": list(tests), "results": str(results),
                "as_main": as_main, "memory_bytes": self.memory_mb * 2**20,
                "cpu_seconds": math.ceil(timeout_s) + 1, "file_bytes": self.max_file_bytes,
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
                return f"could not start the sandbox: {exc}"
            assert process.stdout is not None and process.stderr is not None  # both piped
            output = _Output(self.max_output_bytes, process.pid)
            stopped = None
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(
                        output.drain(process.stdout), output.drain(process.stderr, stderr=True),
                        process.wait(),
                    )
            except TimeoutError:
                stopped = f"timed out after {timeout_s} s"
            finally:
                if process.returncode is None:
                    kill_group(process.pid)
                    await process.wait()
            if output.exceeded:
                stopped = f"output limit exceeded ({self.max_output_bytes} bytes)"
            return SandboxRun(
                _read_stages(results), process.returncode, stopped,
                output.stdout.decode(errors="replace"), output.stderr_tail.decode(errors="replace"),
            )


def _read_stages(path: Path) -> list[dict[str, Any]]:
    """The runner's reports; a line cut short by a kill is skipped."""
    if not path.exists():
        return []
    stages = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            stages.append(json.loads(line))
    return [stage for stage in stages if isinstance(stage, dict)]


def exit_reason(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by signal {-returncode} ({signal.strsignal(-returncode)})"
    return f"exited with status {returncode}"


def _environment(work: Path) -> dict[str, str]:
    """Only what a program needs: nothing inherited but PATH, so no keys or tokens."""
    return {
        "PATH": os.environ.get("PATH", os.defpath), "HOME": str(work), "TMPDIR": str(work),
        "LANG": "C.UTF-8",
    }


def kill_group(pid: int) -> None:
    """SIGKILL the program and anything it started (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
