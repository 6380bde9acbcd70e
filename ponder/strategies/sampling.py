"""Sample N independent chains under a budget: the shared first half of best-of-N and
self-consistency (and of any strategy that needs a pool of full answers).

All samples go to the engine as one request with ``n`` set, so the engine batches them and
computes the prompt once. When the budget cannot cover ``n × max_tokens`` at once, as many
samples as fit are submitted; after they finish, the unused part of the reservation is
released and another wave is submitted with what is left, until ``n`` chains exist or
nothing more fits. When not even one full chain fits, one chain as long as the budget allows
is tried, so a small budget still gives its best answer. The budget's clock cuts waves
short and aborts them in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.core.generation import Completion, GenerationRequest, SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.strategies.base import Context, SamplingConfig
from ponder.verifiers.answers import AnswerExtractor


@dataclass
class SampledChains:
    candidates: list[Candidate]
    budget_exhausted: bool
    exhausted_by: str | None


async def sample_chains(
    problem: Problem,
    ctx: Context,
    *,
    n: int,
    sampling: SamplingConfig,
    extractor: AnswerExtractor,
    system_prompt: str | None,
    logprobs: bool = False,
) -> SampledChains:
    """Up to ``n`` finished chains with their extracted answers, within ``ctx.ledger``."""
    prompt = ctx.backend.render(problem, system_prompt)
    candidates: list[Candidate] = []
    timed_out = False
    while len(candidates) < n and not timed_out:
        wanted = n - len(candidates)
        fitting = ctx.ledger.fit_samples(wanted, sampling.max_tokens, len(prompt))
        max_tokens = sampling.max_tokens
        if fitting == 0 and not candidates:
            # Not even one full chain fits: one shorter chain beats no answer at all.
            fitting, max_tokens = 1, _tokens_for_one_chain(ctx, len(prompt), max_tokens)
        reservation = ctx.ledger.try_reserve(
            generated_tokens=max(fitting, 1) * max_tokens, prompt_tokens=len(prompt), model_calls=1
        )
        if reservation is None:
            break
        request = GenerationRequest(
            prompt_token_ids=tuple(prompt),
            params=SamplingParams(
                n=fitting,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=max_tokens,
                stop=sampling.stop,
                logprobs=0 if logprobs else None,
                seed=ctx.next_seed(),
            ),
        )
        with reservation:
            state = await ctx.backend.generate(request, timeout=ctx.ledger.seconds_left())
            reservation.settle(state.usage)
        timed_out = state.timed_out
        for completion in state.completions:
            if completion.finish_reason != "aborted":
                candidates.append(_candidate(len(candidates), completion, extractor))
    exhausted = len(candidates) < n
    exhausted_by = ctx.ledger.exhausted_by or ("seconds" if timed_out else None)
    return SampledChains(candidates, exhausted, exhausted_by if exhausted else None)


def _tokens_for_one_chain(ctx: Context, prompt_tokens: int, max_tokens: int) -> int:
    """The most tokens one chain may generate within what the budget has left (at least 1,
    so that a budget with nothing left is refused by the reservation and says so)."""
    limits = [max_tokens]
    generated = ctx.ledger.remaining("generated_tokens")
    total = ctx.ledger.remaining("total_tokens")
    if generated is not None:
        limits.append(int(generated))
    if total is not None:
        limits.append(int(total) - prompt_tokens)
    return max(1, min(limits))


def _candidate(index: int, completion: Completion, extractor: AnswerExtractor) -> Candidate:
    return Candidate(
        index=index,
        text=completion.text,
        num_tokens=completion.num_tokens,
        finish_reason=completion.finish_reason,
        answer=extractor.extract(completion.text),
        logprobs=completion.logprobs,
        token_ids=completion.token_ids,
    )
