"""Helpers for search tests: a scripted backend whose samples depend on the path so far,
and a verifier that scores paths by their text from a table."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT
from ponder.verifiers.base import Score, Verifier

PROBLEM = Problem(prompt="What is 6 times 2?")

STEPS = {
    "": ["A\n\n", "B\n\n", "C\n\n", "D\n\n"],
    "A\n\n": ["A1\n\n", "A2\n\n"],
    "C\n\n": ["C1\n\n", "C2\n\n"],
    "C\n\nC1\n\n": ["Answer: 12", "Answer: 13"],
    "A\n\nA2\n\n": ["Answer: 12", "Answer: 11"],
}
"""A reasoning tree for beam search: the children each path asks for, in order."""
SCORES = {
    "A\n\n": 0.9, "B\n\n": 0.2, "C\n\n": 0.7, "D\n\n": 0.5,
    "A\n\nA1\n\n": 0.3, "A\n\nA2\n\n": 0.8, "C\n\nC1\n\n": 0.9, "C\n\nC2\n\n": 0.1,
    "C\n\nC1\n\nAnswer: 12": 0.4, "C\n\nC1\n\nAnswer: 13": 0.95,
    "A\n\nA2\n\nAnswer: 12": 0.6, "A\n\nA2\n\nAnswer: 11": 0.1,
}
"""Each path's score in that tree (``PathScores``)."""


StepTable = Mapping[str, Sequence[str]] | Callable[[str, int, int], str]
"""Per path text, the step each sample writes: ``table[path][sample]``, or
``table(path, sample, call_index)``."""


def path_backend(steps: StepTable, prompt: Sequence[int] | None = None) -> ScriptedBackend:
    """A backend whose sample continuing the path with generated text ``path`` writes the
    step ``steps`` gives; ``prompt`` (default: ``PROBLEM`` as strategies render it) is cut
    off each request's ids first, and every request must start with it."""
    if prompt is None:
        prompt = ScriptedBackend.from_script([]).render(PROBLEM, DEFAULT_SYSTEM_PROMPT)

    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        ids = request.prompt_token_ids
        assert list(ids[: len(prompt)]) == list(prompt), "every request continues the prompt"
        path = "".join(chr(token) for token in ids[len(prompt):])
        if callable(steps):
            return ScriptedSample(steps(path, sample, call))
        return ScriptedSample(steps[path][sample])

    return ScriptedBackend(handler)


def context(backend: ScriptedBackend, budget: Budget | None = None) -> Run:
    return Run(backend=backend, ledger=Ledger(budget or Budget()), rng=random.Random(0))


class PathScores(Verifier):
    """Scores a path by its text. A text missing from ``table`` gets ``Score(None)``; a text
    in ``raise_on`` makes the whole call raise (a verifier that crashes)."""

    table: dict[str, float | None]
    raise_on: tuple[str, ...] = ()

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        if any(c.text in self.raise_on for c in candidates):
            raise RuntimeError("the scorer crashed")
        return [Score(self.table.get(c.text)) for c in candidates]
