"""Search strategies count thinking tokens: every generated step before the answer marker is
thinking, charged to the run's usage (pruned steps too), and each candidate knows its own."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from search_helpers import PROBLEM, context, path_backend

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.strategies import (
    BeamSearch,
    DiverseVerifierTreeSearch,
    ParticleFilter,
    SamplingConfig,
    Strategy,
)
from ponder.verifiers.base import Score, Verifier

STEP = "S\n\n"
ANSWER = "Answer: 7"


class Constant(Verifier):
    """Every path scores the same: the search keeps whatever it keeps first."""

    async def _score(self, problem: Problem, candidates: Sequence[Candidate], ctx: Run) -> list[Score]:
        return [Score(0.5) for _ in candidates]


def two_steps_then_answer(path: str, sample: int, call: int) -> str:
    return ANSWER if path.count(STEP) == 2 else STEP


OPTIONS = {
    "n": 4, "max_steps": 4, "verifier": Constant(),
    "step": StepConfig(delimiters=("\n\n",), max_step_tokens=16),
    "sampling": SamplingConfig(max_tokens=64),
}


@pytest.mark.parametrize(
    "strategy",
    [BeamSearch(**OPTIONS, beam_width=2), DiverseVerifierTreeSearch(**OPTIONS, beam_width=2),
     ParticleFilter(**OPTIONS)],
    ids=["beam", "dvts", "particle_filter"],
)
async def test_steps_before_the_answer_are_thinking(strategy: Strategy) -> None:
    result = await strategy.run(PROBLEM, context(path_backend(two_steps_then_answer)))
    steps = [node for node in result.tree.nodes() if result.tree.text(node.id).endswith(STEP)]
    answers = [node for node in result.tree.nodes() if node.id not in {s.id for s in steps}]
    assert steps and answers
    assert result.usage.thinking_tokens == len(STEP) * len(steps)
    assert result.usage.generated_tokens == len(STEP) * len(steps) + len(ANSWER) * len(answers)
    assert result.candidates and all(c.text.endswith(ANSWER) for c in result.candidates)
    assert all(c.thinking_tokens == 2 * len(STEP) for c in result.candidates)
