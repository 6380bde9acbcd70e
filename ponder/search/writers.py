"""The one way a step search grows its tree: a ``StepWriter`` adds up to ``n`` children under
each of a step's parents, all at once, and says what that cost.

Beam search, DVTS, A* and the particle filter take a writer from their ``step_generator``
and never care who writes: ``SampledSteps`` samples every parent's children from the run's
model in one request per parent (``expand``); speculative steps (a draft model writes, the
base model rates and rewrites) are the other writer. Both end a step where the search's one
``StepConfig`` says, and both charge the thinking part of what they wrote as they write it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ponder.core.sampling import SamplingConfig
from ponder.core.thinking import ThinkingFormat
from ponder.runtime import Run
from ponder.search.expansion import Expansion, StepConfig, expand
from ponder.search.tree import SearchTree


class StepWriter(Protocol):
    """Grows one search tree of one run."""

    async def grow(self, parents: Sequence[int], *, n: int, to_end: bool = False) -> Expansion:
        """Up to ``n`` children under each of ``parents`` (a parent may appear more than once,
        each entry its own children). ``to_end``: the search's last step, which runs every
        path to the end of its answer."""
        ...


@dataclass(frozen=True)
class SampledSteps:
    """Steps sampled from the run's model: each parent's ``n`` children in one request."""

    tree: SearchTree
    ctx: Run
    step: StepConfig
    sampling: SamplingConfig
    thinking: ThinkingFormat
    logprobs: bool = False

    async def grow(self, parents: Sequence[int], *, n: int, to_end: bool = False) -> Expansion:
        return await expand(
            self.tree, parents, self.ctx, n=n, step=self.step, sampling=self.sampling,
            logprobs=self.logprobs, to_end=to_end, thinking=self.thinking,
        )
