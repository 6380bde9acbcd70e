"""The run: the only way strategies and verifiers reach compute.

A strategy or verifier never holds a backend. It gets a ``Run`` and asks it to generate; the
run reserves the work on the ledger before it is submitted, gives the engine the ledger's
deadline, settles what the engine actually did and builds the ``Result``'s usage and budget
flags. So a new strategy cannot overspend by forgetting a line: there is no other line.

Work whose cost is known before it runs goes through ``generate``. Work held otherwise (a
chain and the answer forced after it under one hold; a PRM's pooling call) opens a
``Spending`` with ``hold`` (or ``require``, which raises the refusal) and runs its calls
through it; what they used is settled when the ``with`` block ends, whatever happened inside.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ponder.backends.base import Backend
from ponder.backends.factory import BACKEND_KINDS
from ponder.backends.pool import EnginePool, engines
from ponder.budgets import Budget, Ledger, Reservation
from ponder.core.generation import GenerationRequest, GenerationState, SamplingParams
from ponder.core.pooling import Pooled, PoolingClient
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.usage import Usage

Calls = Literal["model", "verifier", "none"]
"""What one engine call counts as: a model call, a verifier call (a judge's call inside a
strategy), or nothing (a verifier's tokens, whose calls the verifier base charges)."""

Until = Callable[[GenerationState], bool]

ModelSpec = Backend | str | dict[str, Any]
"""A model a run can reach: a backend config (``{kind: vllm|openai, ...}``), a model name for
the in-process engine, or a Backend object."""

MODEL_KINDS = BACKEND_KINDS


def charged(usage: Usage, calls: Calls) -> Usage:
    """``usage`` as the ledger counts it when its engine calls count as ``calls``."""
    if calls == "model":
        return usage
    verifier_calls = usage.model_calls if calls == "verifier" else 0
    return dataclasses.replace(
        usage, model_calls=0, verifier_calls=usage.verifier_calls + verifier_calls
    )


class Spending:
    """Work held on the ledger; every engine call made through it is charged to the hold,
    which is settled with what they used when the ``with`` block ends."""

    def __init__(self, run: Run, reservation: Reservation, calls: Calls) -> None:
        self._run = run
        self._reservation = reservation
        self._calls = calls
        self.spent = Usage()
        """What the calls made through this hold have used so far."""

    async def generate(
        self, prompt: Sequence[int], params: SamplingParams, *, until: Until | None = None
    ) -> GenerationState:
        """Run one request under the ledger's deadline; ``until(state)`` true ends it early.
        What the engine did is charged even when the call is cancelled."""
        request = GenerationRequest(prompt_token_ids=tuple(prompt), params=params)
        state = GenerationState.start(request)
        try:
            await self._run.backend.generate(
                request, timeout=self._run.ledger.seconds_left(), until=until, state=state
            )
        finally:
            if state.finished_at is not None:  # the engine saw the request
                self.add(state.usage)
        return state

    async def pool(
        self, client: PoolingClient, prompts: list[list[int]], separator_id: int | None = None
    ) -> list[Pooled]:
        """Pool ``prompts`` on a pooling client (a PRM's step rows at ``separator_id``, or
        embeddings) under the ledger's deadline. The tokens sent are charged even when the
        deadline cuts the call (``TimeoutError``)."""
        started = time.perf_counter()
        try:
            pooled = await asyncio.wait_for(
                client.pool(prompts, separator_id), self._run.ledger.seconds_left()
            )
        except TimeoutError:
            sent = sum(len(prompt) for prompt in prompts)
            self.add(Usage(prompt_tokens=sent, wall_seconds=time.perf_counter() - started))
            raise
        self.add(
            Usage(
                prompt_tokens=sum(p.prompt_tokens for p in pooled),
                cached_prompt_tokens=sum(p.cached_prompt_tokens for p in pooled),
                wall_seconds=time.perf_counter() - started,
            )
        )
        return pooled

    def add(self, usage: Usage) -> None:
        """Charge work done outside ``generate`` (a pooling call) to this hold."""
        self.spent.add(charged(usage, self._calls))

    def __enter__(self) -> Spending:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reservation.settle(self.spent)


class Run:
    """One request's access to compute: the model, the ledger, the random stream, the score
    cache and the engine pool. Sub-strategies get a ``child``; work on another model (a draft
    model, a judge's own backend) goes through ``on(spec)``, which shares this run's ledger."""

    def __init__(
        self,
        backend: Backend,
        ledger: Ledger,
        rng: random.Random | None = None,
        score_cache: dict[tuple, Any] | None = None,
        pool: EnginePool | None = None,
    ) -> None:
        self.backend = backend
        """The model this run generates with. Read it to inspect; spend through the run."""
        self.ledger = ledger
        self.rng = rng if rng is not None else random.Random(0)
        self.score_cache: dict[tuple, Any] = {} if score_cache is None else score_cache
        """Verifier results of this run, so no (verifier, problem, text) is scored twice."""
        self.pool = pool if pool is not None else engines

    # -- relatives ----------------------------------------------------------------------
    def child(self, budget: Budget | None = None) -> Run:
        """A run for a sub-strategy: a child ledger (its own limits within this one's), its
        own random stream drawn from this one, the same model, score cache and pool."""
        return Run(
            self.backend,
            self.ledger.child(budget),
            random.Random(self.next_seed()),
            self.score_cache,
            self.pool,
        )

    async def on(self, spec: ModelSpec | None) -> Run:
        """This run on another model (from the pool, built once per config), spending from
        the same ledger; None is this run itself."""
        if spec is None:
            return self
        backend = await self.pool.backend(spec)
        return Run(backend, self.ledger, self.rng, self.score_cache, self.pool)

    def next_seed(self) -> int:
        """A request seed drawn from the run's seeded stream (reproducible per run)."""
        return self.rng.randrange(2**31)

    # -- the model's tokenizer ----------------------------------------------------------
    def render(self, problem: Problem, system_prompt: str | None = None) -> list[int]:
        return self.backend.render(problem, system_prompt)

    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return self.backend.render_chat(messages)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.backend.decode(token_ids)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return self.backend.eos_token_ids

    @property
    def engine_processors(self) -> frozenset[str]:
        """The engine-side logits processors the model's backend runs."""
        return getattr(self.backend, "engine_processors", frozenset())

    # -- what still fits ----------------------------------------------------------------
    def fit_samples(self, n: int, max_tokens: int, prompt_tokens: int) -> int:
        """How many samples of ``max_tokens`` (0..n) one call could reserve right now."""
        return self.ledger.fit_samples(n, max_tokens, prompt_tokens)

    def affordable_tokens(self, prompt_tokens: int, chains: int = 1) -> int | None:
        """Generated tokens each of ``chains`` chains sharing one prompt may still spend;
        None when no token limit applies."""
        lefts = []
        generated = self.ledger.remaining("generated_tokens")
        total = self.ledger.remaining("total_tokens")
        if generated is not None:
            lefts.append(int(generated))
        if total is not None:
            lefts.append(int(total) - prompt_tokens)
        return min(lefts) // chains if lefts else None

    def tokens_for_one_chain(self, prompt_tokens: int, max_tokens: int) -> int:
        """The most tokens one chain may generate (at least 1, so that a budget with nothing
        left is refused by the reservation and says so)."""
        affordable = self.affordable_tokens(prompt_tokens)
        return max(1, max_tokens if affordable is None else min(max_tokens, affordable))

    @property
    def expired(self) -> bool:
        return self.ledger.expired

    # -- spending -----------------------------------------------------------------------
    def hold(
        self,
        *,
        generated_tokens: int = 0,
        prompt_tokens: int = 0,
        model_calls: int = 0,
        verifier_calls: int = 0,
        calls: Calls = "model",
    ) -> Spending | None:
        """Hold work on the ledger; None when it does not fit (the ledger then names the
        limit that refused it)."""
        reservation = self.ledger.try_reserve(
            generated_tokens=generated_tokens,
            prompt_tokens=prompt_tokens,
            model_calls=model_calls,
            verifier_calls=verifier_calls,
        )
        return None if reservation is None else Spending(self, reservation, calls)

    def require(self, *, calls: Calls = "model", **amounts: int) -> Spending:
        """Like ``hold``, but a refusal raises ``BudgetExhaustedError`` saying how much of
        which limit was asked and left."""
        return Spending(self, self.ledger.reserve(**amounts), calls)

    async def generate(
        self,
        prompt: Sequence[int],
        params: SamplingParams,
        *,
        until: Until | None = None,
        calls: Calls = "model",
        fit: bool = False,
    ) -> GenerationState | None:
        """Reserve ``params.n × params.max_tokens`` and one call, run the request, settle.
        With ``fit``, as many of the ``n`` samples as fit are submitted when all of them do
        not. None when the budget refuses even one sample."""
        spending = self._hold_samples(prompt, params, calls)
        if spending is None and fit:
            samples = self.fit_samples(params.n, params.max_tokens, len(prompt))
            if samples > 0:
                params = params.model_copy(update={"n": samples})
                spending = self._hold_samples(prompt, params, calls)
        if spending is None:
            return None
        with spending:
            return await spending.generate(prompt, params, until=until)

    def _hold_samples(
        self, prompt: Sequence[int], params: SamplingParams, calls: Calls
    ) -> Spending | None:
        one_call = {"model": {"model_calls": 1}, "verifier": {"verifier_calls": 1}, "none": {}}
        return self.hold(
            generated_tokens=params.n * params.max_tokens,
            prompt_tokens=len(prompt),
            calls=calls,
            **one_call[calls],
        )

    def fits(self, **amounts: int) -> bool:
        """Whether ``amounts`` (as for ``hold``) could be held now; holds nothing. A refusal
        flags the ledger with the limit, so a strategy that gives up can say which one."""
        reservation = self.ledger.try_reserve(**amounts)
        if reservation is None:
            return False
        reservation.release()
        return True

    def charge_thinking(self, tokens: int) -> None:
        """Count ``tokens`` of what was generated as thinking (known only once decoded)."""
        self.ledger.charge(Usage(thinking_tokens=tokens))

    # -- the result ---------------------------------------------------------------------
    def result(
        self,
        strategy: str,
        candidates: list[Candidate],
        selected_index: int | None,
        *,
        cut: bool = False,
        exhausted_by: str | None = None,
        details: dict[str, Any] | None = None,
        tree: Any = None,
    ) -> Result:
        """The strategy's ``Result`` with this run's usage. ``cut``: the budget ended the run
        early; the limit is ``exhausted_by``, else the one the ledger recorded, else the
        clock (an engine call the deadline cut short flags no reservation)."""
        return Result(
            strategy=strategy,
            candidates=candidates,
            selected_index=selected_index,
            usage=self.ledger.spent,
            budget_exhausted=cut,
            exhausted_by=(exhausted_by or self.ledger.exhausted_by or "seconds") if cut else None,
            details=details if details is not None else {},
            tree=tree,
        )
