"""What every strategy is and what it runs with.

A strategy is a frozen pydantic model (its config *is* the object) with one method,
``async run(problem, ctx) -> Result``, where ``ctx`` is the request's ``Run``. Everything that
varies per request lives in the run, never on the strategy, so one strategy object serves
concurrent requests.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from ponder.core.parts import Part
from ponder.core.problem import DEFAULT_SYSTEM_PROMPT, Problem
from ponder.core.registry import Registry
from ponder.core.result import Result
from ponder.core.thinking import ThinkingFormat
from ponder.runtime import Run


class Strategy(Part, abc.ABC):
    """Base of every strategy. Subclasses register with ``@strategies.register(name)``."""

    part_kind = "strategy"

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    scores_steps: ClassVar[bool] = False
    """Whether the strategy's verifier is a step scorer, asked to score partial paths."""
    system_prompt: str | None = Field(
        DEFAULT_SYSTEM_PROMPT, description="Prepended to the chat unless it has a system turn."
    )
    thinking: ThinkingFormat = Field(
        ThinkingFormat(),
        description="The model's reasoning format (a preset name or markers): splits usage into "
        "thinking and answer tokens and tells reasoning-time strategies where thinking ends.",
    )

    @abc.abstractmethod
    async def run(self, problem: Problem, ctx: Run) -> Result: ...

    def check_backend(self, backend: Mapping[str, Any]) -> None:
        """Refuse a backend config (``{kind, model, ...}``) this strategy cannot serve, with a
        BadRequestError that says why. Called before the backend is built, so a mismatch
        (a profile made for another model) costs no engine start; the default accepts any."""

    def gives_logprobs(self) -> bool:
        """Whether this strategy's candidates carry token logprobs, for a parent strategy
        whose verifier reads them."""
        return False


class StrategyRegistry(Registry[Strategy]):
    """Strategies by name; ``build`` makes a whole strategy graph (sub-strategies, verifiers,
    step generators at their paths) and validates it (``ponder.graph``)."""

    def build(self, config: Mapping[str, Any] | Strategy | str) -> Strategy:
        from ponder.graph import load_graph

        return load_graph(config)


strategies: Registry[Strategy] = StrategyRegistry("strategy", Strategy)
