"""ponder's exceptions, one tree so callers can tell whose fault a failure is.

    PonderError
    ├── BadRequestError        the caller's input is wrong (also a ValueError); fix the input
    │   └── UnknownNameError   a strategy, backend, model or config name that does not exist
    ├── BackendError           the engine or server failed this request; the next may succeed
    │   └── BackendDeadError   the engine is gone; build a new backend
    └── BudgetExhaustedError   nothing more can be spent (strategies catch it and return
                               their best answer so far with ``budget_exhausted=True``)

``describe_validation_error`` words pydantic's errors for a BadRequestError: once, plainly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PonderError(Exception):
    """Base of every error ponder raises on purpose."""


class BadRequestError(PonderError, ValueError):
    """The caller's input is invalid; the message names the field and the reason."""


class UnknownNameError(BadRequestError):
    """A name (strategy, backend, model, config option) that ponder does not know."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.known)}")


class BackendError(PonderError):
    """A recoverable failure of the engine or server for one request."""


class BackendDeadError(BackendError):
    """The engine died or the server is unreachable; this backend cannot serve again."""


class BudgetExhaustedError(PonderError):
    """A reservation did not fit in what is left of the budget."""


def missing_values(paths: list[str]) -> BadRequestError:
    """The error for required config values nobody gave (OmegaConf's ``???``), by path."""
    return BadRequestError("; ".join(f"{path}: missing; give it ({path}=...)" for path in sorted(paths)))


_LONGEST_VALUE = 60


def describe_validation_error(kind: str, exc: Any) -> str:
    """A pydantic ``ValidationError`` as one readable line per problem, each naming the field,
    the reason and the value given once: ``strategy.n: Input should be greater than or equal
    to 1 (got -5)``, ``budget.seconds: must be > 0, got -5``."""
    return "; ".join(_describe(kind, error) for error in exc.errors())


def _describe(kind: str, error: Mapping[str, Any]) -> str:
    parts = [str(part) for part in error["loc"]]
    where = ".".join([kind, *parts])
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown parameter"
    context = error.get("ctx") or {}
    # A validator's own ValueError or assertion: its text as written, without pydantic's
    # "Value error, " in front.
    reason = str(context["error"]) if "error" in context else error["msg"]
    if parts and reason.startswith(f"{parts[-1]} must "):  # "budget.seconds: seconds must ..."
        reason = reason[len(parts[-1]) + 1:]
    # A whole-model error's input is the whole config (too long to repeat); a reason that
    # names the value already, or is about there being none, needs no repeat.
    if parts and "got " not in reason and error["type"] not in _SELF_EXPLAINED:
        reason += f" (got {_short(error['input'])})"
    return f"{where}: {reason}"


BLANK_TEXT = "blank_text"
"""The pydantic error type of text that is empty or only whitespace (``ponder.core.problem``)."""

_SELF_EXPLAINED = frozenset({BLANK_TEXT, "missing"})
"""Error types whose reason says all there is to say about the value."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _LONGEST_VALUE else text[:_LONGEST_VALUE - 3] + "..."
