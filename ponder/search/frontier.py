"""A priority frontier: the open states of a best-first search, lowest priority first.

A* keeps the states it may still expand in such a queue, ordered by ``f = g + h``; any
best-first search can use it with its own priority. Keys are whatever names a state (a tree
node id); the frontier never looks inside them.

Ties are broken deterministically, never at random: among equal priorities the key pushed
first comes out first (first-in, first-out). Pushing a key that is already in the frontier
changes its priority but keeps its place in that order, so re-prioritizing a state never
moves it behind states discovered after it.

Priorities must be real numbers (NaN has no order and would corrupt the heap; infinities are
allowed and sort last or first). The queue is a binary heap with lazy removal: ``discard``
and re-prioritizing leave stale entries behind that ``pop`` skips, so every operation stays
O(log n).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from ponder.errors import BadRequestError

K = TypeVar("K", bound=Hashable)


class Frontier(Generic[K]):
    """Keys by priority: ``pop`` returns the lowest, ties to the earliest pushed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, K]] = []
        """(priority, first-push order, version, key); an entry whose version is not the
        key's current one is stale."""
        self._live: dict[K, tuple[float, int, int]] = {}
        """Each key in the frontier: its priority, first-push order and current version."""
        self._order = itertools.count()
        self._versions = itertools.count()

    # -- changes ------------------------------------------------------------------------
    def push(self, key: K, priority: float) -> None:
        """Add ``key`` with ``priority``, or give a key already here a new priority."""
        if isinstance(priority, bool) or not isinstance(priority, (int, float)):
            raise BadRequestError(f"priority must be a number, got {priority!r} for {key!r}")
        if math.isnan(priority):
            raise BadRequestError(f"priority must not be NaN (it has no order), for {key!r}")
        order = self._live[key][1] if key in self._live else next(self._order)
        version = next(self._versions)
        self._live[key] = (float(priority), order, version)
        heapq.heappush(self._heap, (float(priority), order, version, key))

    def pop(self) -> tuple[K, float]:
        """Remove and return the best key and its priority. Raises ``IndexError`` when empty."""
        self._drop_stale()
        if not self._heap:
            raise IndexError("pop from an empty frontier")
        priority, _, _, key = heapq.heappop(self._heap)
        del self._live[key]
        return key, priority

    def discard(self, key: K) -> bool:
        """Remove ``key`` wherever it is (a pruned state); False when it was not here."""
        return self._live.pop(key, None) is not None

    # -- queries ------------------------------------------------------------------------
    def peek(self) -> tuple[K, float] | None:
        """The best key and its priority, left in place; None when empty."""
        self._drop_stale()
        if not self._heap:
            return None
        priority, _, _, key = self._heap[0]
        return key, priority

    def priority(self, key: K) -> float:
        """The current priority of ``key``. Raises ``KeyError`` when it is not here."""
        return self._live[key][0]

    def ordered(self) -> list[tuple[K, float]]:
        """Every key with its priority in the order ``pop`` would return them (a snapshot)."""
        ranked = sorted(self._live.items(), key=lambda item: item[1][:2])
        return [(key, priority) for key, (priority, _, _) in ranked]

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __iter__(self) -> Iterator[K]:
        """Keys in pop order."""
        return iter([key for key, _ in self.ordered()])

    def __repr__(self) -> str:
        shown = ", ".join(f"{key!r}: {priority:g}" for key, priority in self.ordered()[:5])
        more = f", ... ({len(self)} in all)" if len(self) > 5 else ""
        return f"Frontier({{{shown}{more}}})"

    # -- internals ----------------------------------------------------------------------
    def _drop_stale(self) -> None:
        """Pop heap entries of keys discarded or re-prioritized since they were pushed."""
        while self._heap:
            _, _, version, key = self._heap[0]
            live = self._live.get(key)
            if live is not None and live[2] == version:
                return
            heapq.heappop(self._heap)
