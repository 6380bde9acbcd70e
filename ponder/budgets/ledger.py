"""``Ledger``: what has been spent against a ``Budget``, and what is held for work in flight.

Work is reserved before it is submitted and settled with its actual usage when it ends; the
unused part of the reservation goes back. So concurrent branches of a strategy can never
overshoot a limit together: each one's reservation is counted before the next one asks.

Every method is synchronous (nothing awaits between the check and the reservation), so within
one asyncio event loop a check-and-reserve is atomic without locks. A ledger is not
thread-safe: use it from one event loop.

A child ledger (``ledger.child(budget)``) gives a sub-strategy its own limits. What it
reserves and charges also counts against every ancestor, so a child never gets more than
its parent has left.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from ponder.budgets.budget import LIMITS, Budget
from ponder.core.usage import Usage
from ponder.errors import BadRequestError, BudgetExhaustedError, UnknownNameError

_COUNTS = ("generated_tokens", "total_tokens", "model_calls", "verifier_calls")
"""The limits that are counts of work (``seconds`` is the other one)."""


def _demand(usage: Usage) -> dict[str, int]:
    """What ``usage`` weighs against each count limit."""
    return {name: getattr(usage, name) for name in _COUNTS}


class Reservation:
    """Work held against a ledger and all its ancestors until it is settled or released.

    Use it as a context manager so that a failure before ``settle`` gives the hold back::

        with ledger.reserve(generated_tokens=512, prompt_tokens=40, model_calls=1) as held:
            state = await backend.generate(request)
            held.settle(state.usage)
    """

    def __init__(self, ledger: Ledger, held: Usage) -> None:
        self.ledger = ledger
        self.held = held
        """The amounts reserved."""
        self.closed_as: str | None = None
        """'settled' or 'released' once closed; None while the hold is open."""

    def settle(self, usage: Usage) -> None:
        """Charge what the work actually used and give back the whole hold. Usage beyond the
        hold (a backend that generated more than asked) is charged too: accounting stays honest."""
        self._close("settled")
        self.ledger.charge(usage)

    def release(self) -> None:
        """Give the hold back without charging anything (the work was never submitted)."""
        self._close("released")

    def _close(self, how: str) -> None:
        if self.closed_as is not None:
            raise RuntimeError(f"this reservation was already {self.closed_as}; close it once")
        self.closed_as = how
        for name, amount in _demand(self.held).items():
            for ledger in self.ledger.lineage():
                ledger._reserved[name] -= amount

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.closed_as is None:
            self.release()

    def __repr__(self) -> str:
        amounts = {
            "generated_tokens": self.held.generated_tokens,
            "prompt_tokens": self.held.prompt_tokens,
            "model_calls": self.held.model_calls,
            "verifier_calls": self.held.verifier_calls,
        }
        held = ", ".join(f"{k}={v}" for k, v in amounts.items() if v) or "nothing"
        return f"Reservation({held}, {self.closed_as or 'open'})"


class Ledger:
    """Spending and holds against ``budget``, capped by every ancestor's limits.

    ``exhausted`` turns True (and ``exhausted_by`` names the limit) when a reservation on this
    ledger is refused; it is the flag a strategy reports in its result. Ancestors are not
    flagged: the sub-strategy that was refused decides what its parent hears.
    """

    def __init__(
        self,
        budget: Budget,
        parent: Ledger | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` (seconds, monotonic) defaults to the parent's, else ``time.monotonic``;
        tests inject a fake one to pin the ``seconds`` limit."""
        self.budget = budget
        self.parent = parent
        self._clock = clock or (parent._clock if parent else time.monotonic)
        self._opened_at = self._clock()
        self._spent = Usage()
        self._reserved = dict.fromkeys(_COUNTS, 0)
        self.exhausted = False
        self.exhausted_by: str | None = None

    def child(self, budget: Budget | None = None) -> Ledger:
        """A ledger for a sub-strategy: its own limits (none by default) within what this one
        has left."""
        return Ledger(budget if budget is not None else Budget.unlimited(), parent=self)

    def lineage(self) -> Iterator[Ledger]:
        """This ledger, then its parent, up to the root."""
        ledger: Ledger | None = self
        while ledger is not None:
            yield ledger
            ledger = ledger.parent

    # -- queries ------------------------------------------------------------------------
    @property
    def spent(self) -> Usage:
        """A copy of the usage charged so far (holds not included). Its ``wall_seconds`` is
        the time since this ledger opened: the span, not a sum over concurrent calls."""
        return dataclasses.replace(self._spent, wall_seconds=self._elapsed())

    def remaining(self, limit_name: str) -> float | None:
        """What can still be reserved under ``limit_name`` (one of ``LIMITS``) here and in
        every ancestor, holds in flight deducted; None when no ledger in the line limits it."""
        if limit_name not in LIMITS:
            raise UnknownNameError("limit", limit_name, LIMITS)
        lefts = [ledger._left(limit_name) for ledger in self.lineage()]
        lefts = [left for left in lefts if left is not None]
        return max(0, min(lefts)) if lefts else None

    def seconds_left(self) -> float | None:
        """Seconds until the earliest deadline among this ledger and its ancestors."""
        return self.remaining("seconds")

    @property
    def expired(self) -> bool:
        left = self.seconds_left()
        return left is not None and left <= 0

    def fit_samples(self, n: int, max_tokens: int, prompt_tokens: int) -> int:
        """How many samples of ``max_tokens`` each (0..n) could be reserved right now in one
        model call carrying ``prompt_tokens`` once. Reserves nothing: strategies size a batch
        with it, then reserve that batch."""
        _check_amounts(n=n, prompt_tokens=prompt_tokens)
        if max_tokens < 1:
            raise BadRequestError(f"max_tokens must be >= 1, got {max_tokens}")
        calls = self.remaining("model_calls")
        if n == 0 or self.expired or (calls is not None and calls < 1):
            return 0
        fit = n
        generated = self.remaining("generated_tokens")
        if generated is not None:
            fit = min(fit, generated // max_tokens)
        total = self.remaining("total_tokens")
        if total is not None:
            fit = min(fit, (total - prompt_tokens) // max_tokens)
        return max(0, fit)

    # -- spending -----------------------------------------------------------------------
    def reserve(
        self,
        *,
        generated_tokens: int = 0,
        prompt_tokens: int = 0,
        model_calls: int = 0,
        verifier_calls: int = 0,
    ) -> Reservation:
        """Hold the amounts against this ledger and every ancestor, all or nothing.
        Raises ``BudgetExhaustedError`` naming the limit when they do not fit."""
        held = self._held(generated_tokens, prompt_tokens, model_calls, verifier_calls)
        refusal = self._refusal(held)
        if refusal is not None:
            raise BudgetExhaustedError(refusal)
        return self._hold(held)

    def try_reserve(
        self,
        *,
        generated_tokens: int = 0,
        prompt_tokens: int = 0,
        model_calls: int = 0,
        verifier_calls: int = 0,
    ) -> Reservation | None:
        """Like ``reserve``, but a refusal returns None (the ledger is still flagged)."""
        held = self._held(generated_tokens, prompt_tokens, model_calls, verifier_calls)
        return None if self._refusal(held) is not None else self._hold(held)

    def charge(self, usage: Usage) -> None:
        """Charge usage that had no reservation (work whose cost is only known after)."""
        for ledger in self.lineage():
            ledger._spent.add(usage)

    # -- internals ----------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self._clock() - self._opened_at

    def _left(self, name: str) -> float | None:
        """What this ledger alone has left under ``name`` (negative after an overcharge)."""
        limit = getattr(self.budget, name)
        if limit is None:
            return None
        if name == "seconds":
            return limit - self._elapsed()
        return limit - getattr(self._spent, name) - self._reserved[name]

    @staticmethod
    def _held(generated: int, prompt: int, model_calls: int, verifier_calls: int) -> Usage:
        _check_amounts(
            generated_tokens=generated,
            prompt_tokens=prompt,
            model_calls=model_calls,
            verifier_calls=verifier_calls,
        )
        return Usage(
            generated_tokens=generated,
            prompt_tokens=prompt,
            model_calls=model_calls,
            verifier_calls=verifier_calls,
        )

    def _refusal(self, held: Usage) -> str | None:
        """Why ``held`` does not fit (flagging this ledger), or None when it fits."""
        for ledger in self.lineage():
            left = ledger._left("seconds")
            if left is not None and left <= 0:
                limit = ledger.budget.seconds
                message = f"seconds budget: {limit - left:.3g} s elapsed of {limit:g}"
                return self._flag("seconds", message)
        for name, amount in _demand(held).items():
            lefts = [(ledger._left(name), ledger) for ledger in self.lineage()]
            lefts = [(left, ledger) for left, ledger in lefts if left is not None]
            if amount == 0 or not lefts:
                continue
            left, binding = min(lefts, key=lambda pair: pair[0])
            if amount > left:
                limit = getattr(binding.budget, name)
                return self._flag(
                    name, f"{name} budget: {amount} requested, {max(0, left)} left of {limit}"
                )
        return None

    def _flag(self, name: str, message: str) -> str:
        self.exhausted = True
        self.exhausted_by = name
        return message

    def _hold(self, held: Usage) -> Reservation:
        for name, amount in _demand(held).items():
            for ledger in self.lineage():
                ledger._reserved[name] += amount
        return Reservation(self, held)

    def __repr__(self) -> str:
        spent = {name: getattr(self._spent, name) for name in _COUNTS}
        shown = ", ".join(f"{k}={v}" for k, v in spent.items() if v) or "nothing"
        held = ", ".join(f"{k}={v}" for k, v in self._reserved.items() if v)
        held = f"; held: {held}" if held else ""
        flag = f"; exhausted_by={self.exhausted_by!r}" if self.exhausted else ""
        return f"Ledger({self.budget!r}, spent: {shown}{held}{flag})"


def _check_amounts(**amounts: int) -> None:
    for name, value in amounts.items():
        if value < 0:
            raise BadRequestError(f"{name} must be >= 0, got {value}")
