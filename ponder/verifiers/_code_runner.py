"""The script that runs the candidate's program in its sandbox, its ``main`` reading
``JOB_FD REQUESTS_FD REPLIES_FD`` from argv.

It reads the job (the program, whether to run it as ``__main__``, the limits) from
``JOB_FD``, applies the resource limits, optionally installs the audit hook (the ``weak``
isolation mode), runs the program, and says so on ``REPLIES_FD`` (``ready``, then
``program`` with its error or None). With tests, it then serves the test harness, which
runs in a process of its own: each request on ``REQUESTS_FD`` (``-1`` when there are no
tests) looks up a name of the program or calls one of its functions with literal
arguments, and the reply carries the result as its ``repr``.

Nothing here decides a verdict: the program can write anything to these descriptors, and
all it can change that way is what its own functions appear to return, which is its
behaviour. The harness compares the results with the tests' expectations, which never
reach this process.

Standalone on purpose: stdlib only, so it runs under any Python (3.8 or later) the
verifier is pointed at.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

MAX_REPLY_CHARS = 1 << 20
"""The longest ``repr`` a function's result may have to be sent back."""

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


def set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int, processes: int) -> None:
    """Cap address space, CPU time, file size, processes and core dumps; never above the
    inherited hard limit, which an unprivileged process cannot raise. Inside the sandbox's
    user namespace the process cap counts only the sandbox's own processes."""
    limits = ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CPU, cpu_seconds),
              (resource.RLIMIT_FSIZE, file_bytes), (resource.RLIMIT_CORE, 0))
    if processes:
        limits += ((resource.RLIMIT_NPROC, processes),)
    for which, value in limits:
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def guard(root: str) -> Callable[[str, tuple[Any, ...]], None]:
    """An audit hook refusing network access, new processes and writes outside ``root``:
    clear errors for naive code, not a boundary (ctypes and descriptors get past it)."""

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


def answer(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one harness request: what a name is, or what a call returned."""
    name = request["name"]
    if request["op"] == "lookup":
        if name not in namespace:
            return {"kind": "missing"}
        value = namespace[name]
        return {"kind": "callable"} if callable(value) else {"kind": "value", "repr": repr(value)}
    try:
        args, kwargs = ast.literal_eval(request["args"]), ast.literal_eval(request["kwargs"])
        text = repr(namespace[name](*args, **kwargs))
        if len(text) > MAX_REPLY_CHARS:
            raise ValueError(f"the result is too large to check ({len(text)} characters)")
    except BaseException as exc:  # the program's failure is the test's verdict
        return {"error": [type(exc).__name__, describe(exc)]}
    return {"value": text}


def main() -> None:
    job_fd, requests_fd, replies_fd = (int(arg) for arg in sys.argv[1:4])
    with os.fdopen(job_fd, encoding="utf-8") as file:
        job = json.load(file)
    replies = os.fdopen(replies_fd, "w", encoding="utf-8", buffering=1)

    def send(**fields: object) -> None:
        replies.write(json.dumps(fields) + "\n")

    set_limits(job["memory_bytes"], job["cpu_seconds"], job["file_bytes"], job["processes"])
    if job["guard"]:
        sys.addaudithook(guard(os.path.realpath(os.getcwd())))
    send(stage="ready")
    # Not "__main__" under tests: they drive the program, so its main block (which often
    # reads stdin) stays out of the way. A program whose printed output is the answer runs
    # as a script, main block included.
    namespace = {"__name__": "__main__" if job["as_main"] else "solution",
                 "__builtins__": __builtins__}
    try:
        exec(compile(job["program"], "<program>", "exec"), namespace)
    except BaseException as exc:  # the program's failure is the verdict, whatever it is
        send(stage="program", error=describe(exc))
    else:
        send(stage="program", error=None)
        if requests_fd >= 0:
            with os.fdopen(requests_fd, encoding="utf-8") as requests:
                for line in requests:
                    send(**answer(namespace, json.loads(line)))
    # Done: leftover threads and atexit handlers of the program must not hold the run open
    # until the timeout. What the program printed is still in the buffers (a pipe is
    # block-buffered) and is its answer when it runs as a script.
    for stream in (sys.stdout, sys.stderr, replies):
        try:
            stream.flush()
        except (OSError, ValueError):  # the program closed or broke its own stream
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
