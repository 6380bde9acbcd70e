"""What every strategy is and what it runs with.

A strategy is a frozen pydantic model (its config *is* the object) with one method,
``async run(problem, ctx) -> Result``. Everything that varies per request lives in the
``Context``, never on the strategy, so one strategy object serves concurrent requests.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ponder.backends.base import Backend
from ponder.budgets import Ledger
from ponder.core.problem import Problem
from ponder.core.registry import Registry
from ponder.core.result import Result
from ponder.core.thinking import ThinkingFormat

DEFAULT_SYSTEM_PROMPT = "Answer the question. End with 'Answer: <final answer>'."
"""Short on purpose: small models follow a short instruction more often than a long one."""


@dataclass
class Context:
    """Per-request state: the engine, the budget ledger and the random stream."""

    backend: Backend
    ledger: Ledger
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    score_cache: dict[tuple, Any] = field(default_factory=dict)
    """Verifier results of this run, so no (verifier, problem, text) is scored twice."""

    def next_seed(self) -> int:
        """A request seed drawn from the run's seeded stream (reproducible per run)."""
        return self.rng.randrange(2**31)


class SamplingConfig(BaseModel):
    """How each chain is sampled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=10.0, description="0 means greedy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(256, ge=1, description="Most tokens per chain.")
    stop: tuple[str, ...] = Field((), description="Strings that end a chain.")


class Strategy(BaseModel, abc.ABC):
    """Base of every strategy. Subclasses register with ``@strategies.register(name)``."""

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
    async def run(self, problem: Problem, ctx: Context) -> Result: ...

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


strategies: Registry[Strategy] = StrategyRegistry("strategy")
