"""The verifier interface: score many candidates in one call, cached, charged to the budget.

Subclasses implement ``_score`` for the candidates not scored before in this run; the public
``score`` skips the ones already scored (same problem, same text, same verifier), reserves
one verifier call per candidate it sends on when the verifier runs a model or a program,
and records each result. A verifier that cannot score a candidate returns a ``Score`` with
``value=None`` and the reason: never a made-up number.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from pydantic import ConfigDict

from ponder.core.parts import Part
from ponder.core.pooling import Pooled, PoolingClient
from ponder.core.problem import Problem
from ponder.core.registry import Registry
from ponder.core.result import Candidate
from ponder.core.usage import Usage
from ponder.errors import BudgetExhaustedError
from ponder.runtime import Run


@dataclass(frozen=True)
class Score:
    value: float | None
    """In [0, 1], higher is better; None when the candidate could not be scored."""
    reason: str | None = None
    """Why the value is what it is, when that is worth saying (a failed test, a timeout)."""
    steps: tuple[float | None, ...] | None = None
    """Per-step scores, for process verifiers (``value`` is then their aggregate)."""


class Verifier(Part, abc.ABC):
    """Base of every verifier. Subclasses register with ``@verifiers.register(name)``."""

    part_kind = "verifier"

    model_config = ConfigDict(frozen=True, extra="forbid")

    needs_logprobs: ClassVar[bool] = False
    """Strategies ask the engine for token logprobs when their verifier needs them."""
    counts_as_call: ClassVar[bool] = True
    """Whether scoring one candidate spends a verifier call (False for free checks)."""
    scores_partial_paths: ClassVar[bool] = True
    """Whether it can score an unfinished path, as a search's step scorer must (False for
    verifiers that need the final answer or program)."""

    async def score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        """One ``Score`` per candidate, in order. Candidates the budget cannot pay for get
        ``Score(None, reason)``."""
        cache = ctx.score_cache
        keys = [(self._cache_key(), problem, c.text) for c in candidates]
        todo = list(dict.fromkeys(k for k in keys if k not in cache))
        if todo:
            fresh = [next(c for c, k in zip(candidates, keys) if k == key) for key in todo]
            for key, result in zip(todo, await self._score_within_budget(problem, fresh, ctx)):
                cache[key] = result
        return [cache[k] for k in keys]

    async def _score_within_budget(
        self, problem: Problem, candidates: list[Candidate], ctx: Run
    ) -> list[Score]:
        if not self.counts_as_call:
            return await self._score(problem, candidates, ctx)
        return await metered_scores(
            ctx, len(candidates), lambda: self._score(problem, candidates, ctx), "not scored"
        )

    def _cache_key(self) -> str:
        return f"{type(self).__name__}:{self.model_dump_json()}"

    @abc.abstractmethod
    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        """Score candidates never scored before in this run, all in one batch."""


class CandidateCheck(Verifier):
    """A verifier that reads each candidate on its own, with no model or program to run
    (so scoring costs no verifier call): subclasses implement ``check``."""

    counts_as_call: ClassVar[bool] = False

    @abc.abstractmethod
    def check(self, problem: Problem, candidate: Candidate) -> Score: ...

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        return [self.check(problem, candidate) for candidate in candidates]


async def metered_scores(
    ctx: Run, calls: int, score: Callable[[], Awaitable[list[Score]]], refused: str
) -> list[Score]:
    """``score()`` charged as ``calls`` verifier calls; when the budget cannot hold them,
    ``Score(None, "<refused>: <why>")`` for each, and nothing runs."""
    try:
        spending = ctx.require(verifier_calls=calls, calls="none")
    except BudgetExhaustedError as exc:
        return [Score(None, f"{refused}: {exc}")] * calls
    with spending:
        scores = await score()
        spending.add(Usage(verifier_calls=calls))
    return scores


async def pool_within_budget(
    ctx: Run, client: PoolingClient, prompts: list[list[int]], separator_id: int | None = None
) -> list[Pooled]:
    """Pool every prompt at once on a pooling client (a PRM, an embedding engine), charging
    its tokens to the run (``metered_scores`` charges the verifier calls). Tokens sent are
    charged even when the budget's time runs out (``TimeoutError``). Raises
    ``BudgetExhaustedError`` naming the limit when the tokens do not fit."""
    if not prompts:
        return []
    tokens = sum(len(prompt) for prompt in prompts)
    with ctx.require(prompt_tokens=tokens, calls="none") as spending:
        return await spending.pool(client, prompts, separator_id)


verifiers: Registry[Verifier] = Registry("verifier", Verifier)
