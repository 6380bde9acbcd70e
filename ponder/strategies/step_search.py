"""What every step search shares: where a step ends, who writes it, what scores it.

Beam search, DVTS, A* and the particle filter grow a reasoning tree step by step. Each holds
one ``StepConfig`` (``step``), one step generator (``step_generator``: who writes a step) and
one step scorer (``verifier``), and grows its tree only through the writer the generator
opens, so a search never knows whether its steps were sampled or drafted.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from ponder.core.problem import Problem
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.search.tree import SearchTree
from ponder.search.writers import StepWriter
from ponder.strategies.base import Strategy
from ponder.strategies.step_generators import StepGenerator, step_generators
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Verifier, verifiers


class StepSearchStrategy(Strategy):
    """Base of the step searches."""

    scores_steps: ClassVar[bool] = True

    step: StepConfig = StepConfig()
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()
    verifier: Verifier = Field(
        default_factory=lambda: verifiers.build("step_judge"),
        description="The step scorer (scores partial paths); a registry name, a config with "
        "'name', or an object.",
    )
    step_generator: StepGenerator = Field(
        default_factory=StepGenerator,
        description="Who writes each step: a step generator config (name: sample, the base "
        "model, or speculative) or object; where a step ends is ``step``.",
    )

    @field_validator("verifier", mode="before")
    @classmethod
    def _build_verifier(cls, value: object) -> Verifier:
        return verifiers.build(value)  # type: ignore[arg-type]

    @field_validator("step_generator", mode="before")
    @classmethod
    def _build_step_generator(cls, value: object) -> StepGenerator:
        if value is None:
            return StepGenerator()
        return step_generators.build(value)  # type: ignore[arg-type]

    def tree(self, problem: Problem, ctx: Run) -> SearchTree:
        """The search's tree, rooted at the rendered problem."""
        prompt = ctx.render(problem, self.system_prompt)
        return SearchTree(prompt, prompt_text=ctx.decode(prompt))

    async def writer(self, problem: Problem, tree: SearchTree, ctx: Run) -> StepWriter:
        """What grows ``tree`` in this run."""
        return await self.step_generator.writer(
            problem, tree, ctx, step=self.step, sampling=self.sampling,
            system_prompt=self.system_prompt, thinking=self.thinking,
            logprobs=self.needs_step_logprobs(),
        )

    def needs_step_logprobs(self) -> bool:
        """Whether the search reads its steps' token logprobs (its scorer does, by default)."""
        return self.verifier.needs_logprobs
