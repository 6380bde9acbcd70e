"""The trusted test harness, run as ``main(JOB_FD, FROM_PROGRAM_FD, TO_PROGRAM_FD)`` from argv.

It runs the problem's tests in a process of its own (a sandbox of its own too), apart from
the candidate's program, and writes the verdicts on its stdout, which only the verifier
reads. The tests run here as Python; every name they use that is not theirs or a builtin is
looked up in the program's process: a function becomes a stub whose calls go to the
program over a pipe (arguments and results cross as Python literals, read back with
``ast.literal_eval``, so no code of the program ever runs here), a plain value comes back
as that value. The comparison ``f(2) == 4`` runs here, so the program never sees the
expected ``4`` and cannot report a test as passed: all it controls is what its functions
return.

What a test can use of the program: functions called with literal arguments (numbers,
strings, bytes, tuples, lists, dicts, sets, booleans, None) that return literals, and
module-level literal values. Not carried across: objects (class instances, generators),
attributes of the program's functions, in-place changes a function makes to its arguments,
and floats that are infinite or NaN.

Standalone on purpose: stdlib only, so it runs under any Python the verifier is pointed at.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import sys
from typing import Any, TextIO

from _code_runner import MAX_REPLY_CHARS, describe


class ProgramGone(Exception):
    """The program's process ended or stopped answering: the tests left are not reached."""


class ProgramError(Exception):
    """The program raised an exception that is not a builtin one."""


class Channel:
    """Requests to the program and its replies, one JSON line each way."""

    def __init__(self, replies: TextIO, requests: TextIO) -> None:
        self.replies, self.requests = replies, requests

    def receive(self) -> dict[str, Any]:
        line = self.replies.readline(MAX_REPLY_CHARS * 2)
        if not line.endswith("\n"):
            raise ProgramGone
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise ProgramError("the program wrote something that is not a reply")
        return message

    def ask(self, **request: object) -> dict[str, Any]:
        try:
            self.requests.write(json.dumps(request) + "\n")
            self.requests.flush()
        except OSError as exc:
            raise ProgramGone from exc
        return self.receive()


def literal(text: object, what: str) -> Any:
    """``text`` read as a Python literal: data, never code."""
    if isinstance(text, str):
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    raise TypeError(f"{what} is not a Python literal")


class ProgramFunction:
    """A function of the program, called over the channel."""

    def __init__(self, name: str, channel: Channel) -> None:
        self.name, self.channel = name, channel

    def __repr__(self) -> str:
        return f"<function {self.name} of the program>"

    def __call__(self, *args: object, **kwargs: object) -> Any:
        reply = self.channel.ask(op="call", name=self.name, args=repr(args), kwargs=repr(kwargs))
        if "error" in reply:
            kind, text = (list(reply["error"]) + ["", ""])[:2]
            error = getattr(builtins, str(kind), None)
            if isinstance(error, type) and issubclass(error, Exception):
                raise error(str(text).partition(": ")[2] or str(text))
            raise ProgramError(str(text))
        return literal(reply.get("value"), f"the result of {self.name}()")


class ProgramNames(dict):  # type: ignore[type-arg]
    """The tests' namespace: their own names and builtins first, then the program's."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(__builtins__=builtins, __name__="tests")
        self.channel = channel

    def __missing__(self, name: str) -> Any:
        if hasattr(builtins, name):
            raise KeyError(name)  # Python goes on to the builtins
        reply = self.channel.ask(op="lookup", name=name)
        kind = reply.get("kind")
        if kind == "callable":
            value = ProgramFunction(name, self.channel)
        elif kind == "value":
            value = literal(reply.get("repr"), f"the program's {name}")
        else:
            raise KeyError(name)
        self[name] = value
        return value


def main() -> None:
    job_fd, from_program, to_program = (int(arg) for arg in sys.argv[1:4])
    with os.fdopen(job_fd, encoding="utf-8") as file:
        tests = json.load(file)["tests"]
    verdicts = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what the tests print is not a verdict
    channel = Channel(os.fdopen(from_program, encoding="utf-8"),
                      os.fdopen(to_program, "w", encoding="utf-8"))

    def report(**fields: object) -> None:
        verdicts.write(json.dumps(fields) + "\n")

    try:
        if channel.receive().get("stage") != "ready":
            return
        report(stage="ready")
        program = channel.receive()
        error = program.get("error")
        report(stage="program", error=None if error is None else str(error)[:300])
        if program.get("stage") != "program" or error is not None:
            return
        names = ProgramNames(channel)
        for index, test in enumerate(tests):
            try:
                exec(compile(test, f"<test {index + 1}>", "exec"), names)
            except ProgramGone:
                raise
            except ProgramError as exc:
                report(stage="test", index=index, error=str(exc))
            except BaseException as exc:
                report(stage="test", index=index, error=describe(exc))
            else:
                report(stage="test", index=index, error=None)
    except ProgramGone:
        pass  # the tests not reported count as failed; the verifier says why


if __name__ == "__main__":
    main()
