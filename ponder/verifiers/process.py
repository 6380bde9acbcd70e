"""Process verifiers: score every step of a path, then aggregate to one score.

A path's steps are its text split at ``step_delimiter`` (blank lines by default, the way
step-by-step chains and PRM training data separate steps). Subclasses implement
``_score_steps`` over all paths at once, so a model-backed verifier batches every step of
every path in one engine submission.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from pydantic import Field

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.aggregation import Aggregation, aggregate
from ponder.verifiers.base import Score, Verifier


def split_steps(text: str, delimiter: str) -> list[str]:
    """Non-empty steps of ``text``; a text without the delimiter is one step."""
    return [step.strip() for step in text.split(delimiter) if step.strip()]


class ProcessVerifier(Verifier):
    """A verifier that scores steps; ``Score.steps`` keeps them, ``Score.value`` aggregates."""

    aggregation: Aggregation = Field("last", description="How step scores become one score.")
    step_delimiter: str = Field("\n\n", min_length=1, description="What separates steps.")

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        paths = [split_steps(c.text, self.step_delimiter) for c in candidates]
        per_path = await self._score_steps(problem, paths, ctx)
        return [self._aggregate(steps) for steps in per_path]

    def _aggregate(self, steps: Sequence[float | None] | Score) -> Score:
        if isinstance(steps, Score):  # the verifier could not score this path at all
            return steps
        value = aggregate(steps, self.aggregation)
        reason = None if value is not None else "no step could be scored"
        return Score(value, reason, tuple(steps))

    @abc.abstractmethod
    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: Run
    ) -> list[list[float | None] | Score]:
        """Per path, one score per step (None where a step could not be scored), or a
        ``Score(None, reason)`` when the whole path could not be scored."""
