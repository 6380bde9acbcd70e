"""Budget forcing (s1, "Simple test-time scaling", Muennighoff et al., 2025): decide how long
a chain thinks. Below ``min_thinking_tokens`` an attempt to end the thinking is overridden
and the continuation word ("Wait") written in its place, so the model reconsiders; at
``max_thinking_tokens`` the thinking is closed with the answer prompt and the answer forced.
Budgets are elastic: the answer has its own limit, ``max_answer_tokens``.

The same rule runs two ways (``mode``):

- ``in_engine``: one request; the engine's logits processor (``ponder.core.forcing``)
  redirects endings to the continuation, forces the answer prompt at the maximum and a stop
  token at the answer limit. Needs an in-process vLLM engine with the processor registered
  (``VllmConfig.budget_forcing``). Which continuations it forced cannot be seen from outside,
  so ``forced_continuations`` is None there; ``continuation_words`` counts the word in the
  thinking, the model's own uses included. It recognises the marker only in the
  tokenizations the processor lists (see ``ponder.core.forcing``).
- ``round_trip``: for any backend (servers). Generate with the marker as a stop string;
  below the minimum drop the marker (or EOS), append the continuation's ids and resubmit the
  token-id prefix, which the prefix cache serves; at the maximum the call's ``max_tokens``
  ends the thinking, the answer prompt's ids are appended and the answer generated.
- ``auto``: ``in_engine`` when the backend runs the processor, else ``round_trip``.

A model that never writes the marker thinks until the maximum, where the answer is forced. A
chain that stops (EOS) at or above the minimum without the marker ends there; its answer is
extracted from what it wrote. ``sampling.max_tokens`` caps a whole chain. Under token
limits in the budget, the thinking maximum shrinks so that every chain can still answer.

``n`` chains run at once (one request in the engine); more than one vote (ties to the
shortest chain, then the earliest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from ponder.core.forcing import FORCING_KEY, ForcingArgs, continuation_for, forced_close
from ponder.core.generation import (
    Completion,
    FinishReason,
    SamplingParams,
)
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.selection import select

Mode = Literal["auto", "in_engine", "round_trip"]


@dataclass
class _Chain:
    """One chain as it grows: its tokens, which of them the engine generated (the rest were
    appended by the round trip), and what forcing did to it."""

    token_ids: list[int] = field(default_factory=list)
    generated: list[bool] = field(default_factory=list)
    dropped: int = 0
    """Generated while thinking, then removed (a marker or EOS replaced by the continuation)."""
    forced_continuations: int | None = 0
    forced_close: bool = False
    model_calls: int = 0
    finish_reason: FinishReason | None = None
    stopped_by: str | None = None
    """The budget limit that stopped the chain early, if one did."""

    def extend(self, ids: Sequence[int], generated: bool) -> None:
        self.token_ids += ids
        self.generated += [generated] * len(ids)


@strategies.register("budget_forcing")
class BudgetForcing(Strategy):
    name = "budget_forcing"

    min_thinking_tokens: int = Field(
        32, ge=0, description="Thinking tokens before the model may end its thinking."
    )
    max_thinking_tokens: int = Field(
        192, ge=1, description="Thinking tokens after which the answer is forced."
    )
    max_answer_tokens: int = Field(
        32, ge=1, description="Tokens of the answer after the thinking closes (its own limit)."
    )
    max_continuations: int = Field(
        2, ge=0, description="Most endings overridden below the minimum, per chain."
    )
    n: int = Field(1, ge=1, le=1024, description="Chains run at once; more than one vote.")
    mode: Mode = Field("auto", description="in_engine, round_trip, or auto (see module doc).")
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    @model_validator(mode="after")
    def _budgets_fit(self) -> BudgetForcing:
        if self.min_thinking_tokens > self.max_thinking_tokens:
            raise ValueError(
                f"min_thinking_tokens must be <= max_thinking_tokens, got "
                f"{self.min_thinking_tokens} > {self.max_thinking_tokens}"
            )
        needed = self.max_thinking_tokens + self.max_answer_tokens
        if self.sampling.max_tokens < needed:
            raise ValueError(
                f"sampling.max_tokens (the most tokens per chain) must be >= "
                f"max_thinking_tokens + max_answer_tokens = {needed}, got "
                f"{self.sampling.max_tokens}"
            )
        if self.sampling.temperature == 0.0 and self.n > 1:
            raise ValueError(
                f"n must be 1 when sampling.temperature is 0 (greedy chains are all the same), "
                f"got n={self.n}"
            )
        if self.sampling.stop:
            raise ValueError(
                f"sampling.stop must be empty: thinking ends at thinking.think_end and the "
                f"answer at max_answer_tokens, got {list(self.sampling.stop)}"
            )
        return self

    async def run(self, problem: Problem, ctx: Run) -> Result:
        mode = self._mode(ctx)
        prompt = ctx.render(problem, self.system_prompt)
        limits = self._limits(ctx, len(prompt))
        if limits is None:
            return self._result(ctx, [_Chain(stopped_by=ctx.ledger.exhausted_by)], mode, None)
        args, ceiling = limits
        if mode == "in_engine":
            chains = await self._in_engine(ctx, prompt, args, ceiling)
        else:
            seeds = [ctx.next_seed() for _ in range(self.n)]
            chains = list(await asyncio.gather(
                *(self._round_trip(ctx, prompt, args, ceiling, seed) for seed in seeds)
            ))
        return self._result(ctx, chains, mode, args)

    # -- configuration ----------------------------------------------------------------------
    def _mode(self, ctx: Run) -> Literal["in_engine", "round_trip"]:
        runs = FORCING_KEY in ctx.engine_processors
        if self.mode == "in_engine" and not runs:
            raise BadRequestError(
                f"mode 'in_engine' needs an in-process vLLM engine started with "
                f"VllmConfig(budget_forcing=True); the {ctx.backend.name} backend does not run "
                f"the processor: use mode 'round_trip' or 'auto'"
            )
        if self.mode == "auto":
            return "in_engine" if runs else "round_trip"
        return self.mode

    def _limits(self, ctx: Run, prompt_tokens: int) -> tuple[ForcingArgs, int] | None:
        """The forcing args and each chain's token ceiling, with the thinking maximum shrunk
        so that n chains, each with its answer, fit in what the budget has left. None (the
        ledger flagged) when not even one thinking token and the answer fit."""
        thinking = self.thinking
        answer_prompt = len(ctx.encode(thinking.answer_prompt))
        affordable = ctx.affordable_tokens(prompt_tokens, self.n)
        ceiling, max_thinking = self.sampling.max_tokens, self.max_thinking_tokens
        if affordable is not None:
            ceiling = min(ceiling, affordable)
            max_thinking = min(max_thinking, affordable - self.max_answer_tokens - answer_prompt)
        if max_thinking < 1:
            smallest = self.n * (1 + answer_prompt + self.max_answer_tokens)
            ctx.fits(generated_tokens=smallest, prompt_tokens=prompt_tokens)  # names the limit
            return None
        args = ForcingArgs.build(
            think_end=thinking.think_end,
            continuation=thinking.continuation,
            answer_prompt=thinking.answer_prompt,
            encode=ctx.encode,
            decode=ctx.decode,
            min_thinking=min(self.min_thinking_tokens, max_thinking),
            max_thinking=max_thinking,
            max_answer=self.max_answer_tokens,
            max_continuations=self.max_continuations,
        )
        return args, ceiling

    def _params(self, max_tokens: int, seed: int, **extra: Any) -> SamplingParams:
        return SamplingParams(
            temperature=self.sampling.temperature, top_p=self.sampling.top_p,
            max_tokens=max_tokens, seed=seed, **extra,
        )

    # -- the two ways to run ----------------------------------------------------------------
    async def _in_engine(
        self, ctx: Run, prompt: list[int], args: ForcingArgs, ceiling: int
    ) -> list[_Chain]:
        """All chains in one request; the engine's processor does the forcing."""
        params = self._params(
            ceiling, ctx.next_seed(), n=self.n,
            extra_args={FORCING_KEY: args.model_dump(mode="json")},
        )
        state = await ctx.generate(prompt, params)
        if state is None:
            return [_Chain(forced_continuations=None, stopped_by=ctx.ledger.exhausted_by)]
        chains = []
        for completion in state.completions:
            chain = _Chain(forced_continuations=None, model_calls=1)
            chain.extend(completion.token_ids, generated=True)
            chain.forced_close = forced_close(completion.token_ids, args)
            chain.finish_reason = completion.finish_reason
            chain.stopped_by = "seconds" if state.timed_out else None
            chains.append(chain)
        return chains

    async def _round_trip(
        self, ctx: Run, prompt: list[int], args: ForcingArgs, ceiling: int, seed: int
    ) -> _Chain:
        """One chain: stop at the marker, continue or close it, then answer."""
        chain, thinking = _Chain(), self.thinking
        while True:
            room = args.max_thinking - len(chain.token_ids)  # within ceiling by construction
            if room <= 0:
                break
            params = self._params(
                room, seed + chain.model_calls, stop=(thinking.think_end,),
                include_stop_str_in_output=True,
            )
            completion = await self._call(ctx, prompt, chain, params)
            if completion is None:
                return chain
            ids, kept = completion.token_ids, self._kept(completion, ctx)
            wants_to_end = completion.finish_reason == "stop"
            thought = len(chain.token_ids) + kept
            if (wants_to_end and thought < args.min_thinking
                    and chain.forced_continuations < args.max_continuations):
                replaced = ctx.decode(ids[kept:])
                chain.extend(ids[:kept], generated=True)
                chain.dropped += len(ids) - kept
                word = continuation_for(replaced, thinking.continuation)
                chain.extend(ctx.encode(word), generated=False)
                chain.forced_continuations += 1
                continue
            chain.extend(ids, generated=True)
            if completion.finish_reason == "length":
                break  # the maximum: close the thinking below
            if completion.stop_reason != thinking.think_end:
                return chain  # ended (EOS) at or above the minimum, without the marker
            return await self._answer(ctx, prompt, chain, args, ceiling, seed)
        chain.extend(ctx.encode(thinking.answer_prompt), generated=False)
        chain.forced_close = True
        return await self._answer(ctx, prompt, chain, args, ceiling, seed)

    async def _answer(
        self, ctx: Run, prompt: list[int], chain: _Chain, args: ForcingArgs, ceiling: int,
        seed: int,
    ) -> _Chain:
        room = min(args.max_answer, ceiling - len(chain.token_ids))
        if room > 0:
            params = self._params(room, seed + chain.model_calls)
            completion = await self._call(ctx, prompt, chain, params)
            if completion is not None:
                chain.extend(completion.token_ids, generated=True)
        return chain

    async def _call(
        self, ctx: Run, prompt: list[int], chain: _Chain, params: SamplingParams
    ) -> Completion | None:
        """Continue the chain from its token ids; None (the chain stops) when the budget
        refuses the call or its clock cuts it (whatever it generated is kept)."""
        state = await ctx.generate(prompt + chain.token_ids, params)
        if state is None:
            chain.stopped_by = ctx.ledger.exhausted_by
            return None
        chain.model_calls += 1
        completion = state.completions[0]
        chain.finish_reason = completion.finish_reason
        if state.timed_out or completion.finish_reason == "aborted":
            chain.extend(completion.token_ids, generated=True)
            chain.stopped_by = "seconds"
            return None
        return completion

    def _kept(self, completion: Completion, ctx: Run) -> int:
        """How many of a thinking call's tokens stay if the ending is overridden: those
        before the marker, or all but a final stop token (EOS)."""
        ids = completion.token_ids
        if completion.stop_reason == self.thinking.think_end:
            return self.thinking.split_tokens(ids, ctx.decode)
        ends_with_eos = bool(ids) and ids[-1] in ctx.eos_token_ids
        return len(ids) - 1 if ends_with_eos else len(ids)

    # -- the result ---------------------------------------------------------------------------
    def _result(
        self, ctx: Run, chains: list[_Chain], mode: str, args: ForcingArgs | None
    ) -> Result:
        """Chains with at least one token are candidates; usage counts their thinking."""
        candidates, reports = [], []
        spent_thinking = 0
        for index, chain in enumerate(c for c in chains if c.token_ids):
            candidate, report = self._candidate(index, chain, ctx)
            candidates.append(candidate)
            reports.append(report)
            spent_thinking += report["thinking_tokens"]
        ctx.charge_thinking(spent_thinking)
        winner, evidence = select(candidates, "majority")
        stopped = [c.stopped_by for c in chains if c.stopped_by]
        continuations = [c.forced_continuations for c in chains]
        return ctx.result(
            self.name, candidates, winner,
            cut=bool(stopped), exhausted_by=stopped[0] if stopped else None,
            details={
                "mode": mode,
                "min_thinking_tokens": args.min_thinking if args else None,
                "max_thinking_tokens": args.max_thinking if args else None,
                **evidence,
                "forced_continuations": None if None in continuations else sum(continuations),
                "forced_closes": sum(c.forced_close for c in chains),
                "chains": reports,
            },
        )

    def _candidate(
        self, index: int, chain: _Chain, ctx: Run
    ) -> tuple[Candidate, dict[str, Any]]:
        text = ctx.decode(chain.token_ids)
        thinking_end = self.thinking.split_tokens(chain.token_ids, ctx.decode)
        thought = sum(chain.generated[:thinking_end]) + chain.dropped
        answered = sum(chain.generated[thinking_end:])
        candidate = Candidate(
            index=index,
            text=text,
            num_tokens=len(chain.token_ids),
            finish_reason=chain.finish_reason,
            answer=self.extractor.extract(text),
            thinking_tokens=thinking_end,
            token_ids=chain.token_ids,
        )
        report = {
            "model_calls": chain.model_calls,
            "forced_continuations": chain.forced_continuations,
            "continuation_words": self.thinking.split(text)[0].count(self.thinking.continuation),
            "forced_close": chain.forced_close,
            "thinking_tokens": thought,
            "answer_tokens": answered,
            "injected_tokens": chain.generated.count(False),
            "dropped_tokens": chain.dropped,
        }
        return candidate, report
