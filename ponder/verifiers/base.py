"""The outcome-verifier interface: score finished candidates, all of them in one call."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from ponder.core.problem import Problem
from ponder.core.registry import Registry
from ponder.core.result import Candidate

if TYPE_CHECKING:
    from ponder.strategies.base import Context


class Verifier(BaseModel, abc.ABC):
    """Scores candidates: higher is better; None means "could not score" (never a fake 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    needs_logprobs: ClassVar[bool] = False
    """Strategies ask the engine for token logprobs when their verifier needs them."""

    @abc.abstractmethod
    async def score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Context
    ) -> list[float | None]: ...


verifiers: Registry[Verifier] = Registry("verifier")
