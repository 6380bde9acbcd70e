"""Helpers for strategy tests: a context over the scripted backend, and a verifier that
returns scores from a table."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier


def scripted_context(samples: Sequence[ScriptedSample | str], budget: Budget | None = None) -> Run:
    return Run(
        backend=ScriptedBackend.from_script(samples),
        ledger=Ledger(budget or Budget()),
        rng=random.Random(0),
    )


class TableVerifier(Verifier):
    """Scores candidates by their index, from a fixed table (None = could not score)."""

    table: tuple[float | None, ...]

    async def _score(self, problem: Problem, candidates: Sequence[Candidate], ctx: Run) -> list[Score]:
        return [Score(self.table[c.index]) for c in candidates]
