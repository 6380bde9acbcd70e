"""ponder's exceptions, one tree so callers can tell whose fault a failure is.

    PonderError
    ├── BadRequestError        the caller's input is wrong (also a ValueError); fix the input
    │   └── UnknownNameError   a strategy, backend, model or config name that does not exist
    ├── BackendError           the engine or server failed this request; the next may succeed
    │   └── BackendDeadError   the engine is gone; build a new backend
    └── BudgetExhaustedError   nothing more can be spent (strategies catch it and return
                               their best answer so far with ``budget_exhausted=True``)
"""

from __future__ import annotations


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
