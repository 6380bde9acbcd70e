"""The script the code verifier runs in each sandbox process: ``python -I -B _code_runner.py JOB``.

It reads the job (program, tests, whether to run as ``__main__``, limits, where to report), applies the resource limits,
installs an audit hook, runs the program in a fresh namespace and then each test, and
reports one JSON line per stage to the results file. The results file is opened before the
hook goes in and lies outside the program's directory, so the program cannot open it;
stdout and stderr belong to the program and are never parsed.

The audit hook refuses network access, process creation, and writes outside the working
directory. It guards against accidents and naive code (a solution that deletes files or
fetches a URL), not against hostile code: ctypes, an open descriptor handed to ``os.write``,
and paths relative to a ``dir_fd`` (judged as if relative to the cwd) get past it. Real
isolation needs a network namespace (``unshare --net``) or a container.

Standalone on purpose: stdlib only, so it runs under any Python (3.8 or later, for audit
hooks) the verifier is pointed at.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

NETWORK_EVENTS = frozenset({
    "socket.bind", "socket.connect", "socket.getaddrinfo", "socket.gethostbyaddr",
    "socket.gethostbyname", "socket.getnameinfo", "socket.sendmsg", "socket.sendto",
})
PROCESS_EVENTS = frozenset({
    "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system",
    "subprocess.Popen",
})
WRITE_EVENTS = {
    # event -> positions of the paths it changes ("open" is checked by its mode)
    "os.chmod": (0,), "os.chown": (0,), "os.link": (1,), "os.mkdir": (0,),
    "os.remove": (0,), "os.removexattr": (0,), "os.rename": (0, 1), "os.rmdir": (0,),
    "os.setxattr": (0,), "os.symlink": (1,), "os.truncate": (0,), "os.utime": (0,),
    "shutil.chown": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
    "shutil.make_archive": (0,), "shutil.move": (0, 1), "shutil.rmtree": (0,),
    "shutil.unpack_archive": (1,),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    """Cap address space, CPU time, file size and core dumps; never above the inherited
    hard limit, which an unprivileged process cannot raise."""
    limits = ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CPU, cpu_seconds),
              (resource.RLIMIT_FSIZE, file_bytes), (resource.RLIMIT_CORE, 0))
    for which, value in limits:
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def guard(root: str) -> Callable[[str, tuple[Any, ...]], None]:
    """An audit hook refusing network access, new processes and writes outside ``root``."""

    def inside(path: Any) -> bool:
        if path is None or isinstance(path, int):  # a descriptor: checked when it was opened
            return True
        real = os.path.realpath(os.fsdecode(path))
        return real in (root, os.devnull) or real.startswith(root + os.sep)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in NETWORK_EVENTS:
            raise PermissionError(f"network access blocked ({event})")
        if event in PROCESS_EVENTS:
            raise PermissionError(f"process creation blocked ({event})")
        if event == "open":
            mode, flags = args[1], args[2] or 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                flags & WRITE_FLAGS)
            paths = args[:1] if writes else ()
        else:
            paths = tuple(args[i] for i in WRITE_EVENTS.get(event, ()))
        for path in paths:
            if not inside(path):
                raise PermissionError(
                    f"write outside the sandbox directory blocked ({event} {path!r})")

    return hook


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        job = json.load(file)
    with open(job["results"], "w", encoding="utf-8", buffering=1) as results:

        def report(**fields: object) -> None:
            results.write(json.dumps(fields) + "\n")

        set_limits(job["memory_bytes"], job["cpu_seconds"], job["file_bytes"])
        sys.addaudithook(guard(os.path.realpath(os.getcwd())))
        run(job["program"], job["tests"], report, as_main=job.get("as_main", False))
    # The verdict is in: leftover threads and atexit handlers of the program must not hold
    # the run open until the timeout. What the program printed is still in the buffers
    # (a pipe is block-buffered) and is its answer when it runs as a script.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the program closed or broke its own stream
            pass
    os._exit(0)


def run(
    program: str, tests: list[str], report: Callable[..., None], *, as_main: bool = False
) -> None:
    """Run the program, then each test in the same namespace, reporting every stage."""
    report(stage="ready")
    # Not "__main__" under tests: they drive the program, so its main block (which often
    # reads stdin) stays out of the way. A program whose printed output is the answer runs
    # as a script, main block included.
    namespace = {"__name__": "__main__" if as_main else "solution", "__builtins__": __builtins__}
    try:
        exec(compile(program, "<program>", "exec"), namespace)
    except BaseException as exc:  # the program's failure is the verdict, whatever it is
        report(stage="program", error=describe(exc))
        return
    report(stage="program", error=None)
    for index, test in enumerate(tests):
        try:
            exec(compile(test, f"<test {index + 1}>", "exec"), namespace)
        except BaseException as exc:
            report(stage="test", index=index, error=describe(exc))
        else:
            report(stage="test", index=index, error=None)


if __name__ == "__main__":
    main()
