"""Sample N independent chains under a budget: the shared first half of best-of-N and
self-consistency (and of any strategy that needs a pool of full answers).

All samples go to the engine as one request with ``n`` set, so the engine batches them and
computes the prompt once. When the budget cannot cover ``n × max_tokens`` at once, as many
samples as fit are submitted; after they finish, the unused part of the reservation is
released and another wave is submitted with what is left, until ``n`` chains exist or
nothing more fits. When not even one full chain fits, one chain as long as the budget allows
is tried, so a small budget still gives its best answer. The budget's clock cuts waves
short and aborts them in the engine, and so does ``stop_after`` (short-m@k): once that many
chains have ended on their own, the rest are aborted.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from ponder.core.generation import Completion, GenerationState, SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.core.sampling import SamplingConfig
from ponder.core.thinking import ThinkingFormat
from ponder.runtime import Run
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.programs import ProgramFormat

ChainFormat = Literal["words", "program", "mixed"]
"""How chains reason: in words (the answer extracted from the text), as a program (the answer
is what it prints in the sandbox), or a mix of both voting together."""


@dataclass
class SampledChains:
    candidates: list[Candidate]
    budget_exhausted: bool
    exhausted_by: str | None
    finish_order: list[int] = field(default_factory=list)
    """Candidate indices in the order their chains finished (one engine step: shorter first).
    Watched live only with ``stop_after``; without it, a wave's chains are ordered by length."""
    aborted: int = 0
    """Chains stopped in the engine before they finished (by ``stop_after`` or the clock)."""


async def sample_chains(
    problem: Problem,
    ctx: Run,
    *,
    n: int,
    sampling: SamplingConfig,
    extractor: AnswerExtractor,
    system_prompt: str | None,
    logprobs: bool = False,
    stop_after: int | None = None,
    thinking: ThinkingFormat | None = None,
) -> SampledChains:
    """Up to ``n`` finished chains with their extracted answers, within ``ctx.ledger``.
    With ``stop_after``, sampling ends as soon as that many chains have stopped on their own
    (finish reason ``stop``; chains cut by ``max_tokens`` do not count). With ``thinking``,
    each chain's tokens are split into thinking and answer, and usage counts the thinking."""
    prompt = ctx.render(problem, system_prompt)
    candidates: list[Candidate] = []
    finish_order: list[int] = []
    stopped = aborted = 0
    timed_out = False
    while len(candidates) < n and not timed_out and (stop_after is None or stopped < stop_after):
        wanted = n - len(candidates)
        fitting = ctx.fit_samples(wanted, sampling.max_tokens, len(prompt))
        max_tokens = sampling.max_tokens
        if fitting == 0 and not candidates:
            # Not even one full chain fits: one shorter chain beats no answer at all.
            fitting, max_tokens = 1, ctx.tokens_for_one_chain(len(prompt), max_tokens)
        params = SamplingParams(
            n=max(fitting, 1),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=max_tokens,
            stop=sampling.stop,
            logprobs=0 if logprobs else None,
            seed=ctx.next_seed(),
        )
        watch = _FinishWatch(None if stop_after is None else stop_after - stopped)
        state = await ctx.generate(
            prompt, params, until=watch if stop_after is not None else None  # nothing to watch for
        )
        if state is None:
            break
        split = thinking_split(state.completions, thinking, ctx)
        watch(state)  # the final state may hold finishes no update was seen for
        timed_out, stopped = state.timed_out, stopped + watch.stopped
        aborted += sum(c.finish_reason == "aborted" for c in state.completions)
        position: dict[int, int] = {}
        for completion in state.completions:
            if completion.finish_reason != "aborted":
                position[completion.index] = len(candidates)
                candidate = candidate_from(len(candidates), completion, extractor)
                candidate.thinking_tokens = split.get(completion.index)
                candidates.append(candidate)
        finish_order += [position[i] for i in watch.order]
    enough = stop_after is not None and stopped >= stop_after
    exhausted = len(candidates) < n and not enough
    exhausted_by = ctx.ledger.exhausted_by or ("seconds" if timed_out else None)
    return SampledChains(
        candidates, exhausted, exhausted_by if exhausted else None, finish_order, aborted
    )


async def sample_formatted(
    problem: Problem,
    ctx: Run,
    *,
    n: int,
    sampling: SamplingConfig,
    extractor: AnswerExtractor,
    system_prompt: str | None,
    chain_format: ChainFormat,
    program: ProgramFormat,
    logprobs: bool = False,
    thinking: ThinkingFormat | None = None,
) -> SampledChains:
    """``n`` chains in ``chain_format``: words as ``sample_chains`` draws them, programs run
    in the sandbox for their answers, or both at once (``program.mixed_share`` of them
    programs, listed after the word chains)."""
    programs = {"words": 0, "program": n, "mixed": round(n * program.mixed_share)}[chain_format]
    if chain_format == "mixed":
        programs = min(max(programs, 1), n - 1) if n > 1 else programs
    words = n - programs
    draws = []
    if words:
        draws.append(sample_chains(
            problem, ctx, n=words, sampling=sampling, extractor=extractor,
            system_prompt=system_prompt, logprobs=logprobs, thinking=thinking,
        ))
    if programs:
        draws.append(_sample_programs(problem, ctx, programs, sampling, program, logprobs))
    return _joined(await asyncio.gather(*draws))


async def _sample_programs(
    problem: Problem, ctx: Run, n: int, sampling: SamplingConfig, program: ProgramFormat,
    logprobs: bool,
) -> SampledChains:
    chains = await sample_chains(
        program.problem(problem), ctx, n=n,
        sampling=sampling.model_copy(update={"stop": (*sampling.stop, *program.stop)}),
        extractor=AnswerExtractor(), system_prompt=program.system_prompt, logprobs=logprobs,
    )
    await program.answer(chains.candidates, ctx)
    return chains


def _joined(parts: list[SampledChains]) -> SampledChains:
    """One pool from several draws, renumbered in order; cut short if any draw was."""
    if len(parts) == 1:
        return parts[0]
    candidates: list[Candidate] = []
    finish_order: list[int] = []
    for part in parts:
        offset = len(candidates)
        candidates += [dataclasses.replace(c, index=offset + c.index) for c in part.candidates]
        finish_order += [offset + i for i in part.finish_order]
    cut = next((p for p in parts if p.budget_exhausted), None)
    return SampledChains(
        candidates, cut is not None, cut.exhausted_by if cut else None, finish_order,
        sum(p.aborted for p in parts),
    )


class _FinishWatch:
    """An ``until`` for ``Backend.generate``: records the order in which samples finish and
    is true once ``enough`` of them have stopped on their own (never, when ``enough`` is None)."""

    def __init__(self, enough: int | None) -> None:
        self.enough = enough
        self.order: list[int] = []
        self.stopped = 0
        self._seen: set[int] = set()

    def __call__(self, state: GenerationState) -> bool:
        # Samples finishing in the same step: the shorter one ended first (fewer tokens).
        new = sorted(
            (c for c in state.completions
             if c.finish_reason in ("stop", "length") and c.index not in self._seen),
            key=lambda c: (c.num_tokens, c.index),
        )
        for completion in new:
            self._seen.add(completion.index)
            self.order.append(completion.index)
            self.stopped += completion.finish_reason == "stop"
        return self.enough is not None and self.stopped >= self.enough


def thinking_split(
    completions: list[Completion], thinking: ThinkingFormat | None, ctx: Run
) -> dict[int, int]:
    """Thinking tokens per sample index (aborted ones too: they never reached an answer), charged
    to the ledger as the thinking part of what was generated."""
    if thinking is None:
        return {}
    split = {c.index: thinking.split_tokens(c.token_ids, ctx.decode) for c in completions}
    ctx.charge_thinking(sum(split.values()))
    return split


def candidate_from(index: int, completion: Completion, extractor: AnswerExtractor) -> Candidate:
    return Candidate(
        index=index,
        text=completion.text,
        num_tokens=completion.num_tokens,
        finish_reason=completion.finish_reason,
        answer=extractor.extract(completion.text),
        logprobs=completion.logprobs,
        token_ids=completion.token_ids,
    )
