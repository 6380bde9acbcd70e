"""Step labels without step annotations: Monte Carlo roll-outs from each step of a chain.

A step's value is the share of k continuations, sampled from the chain's token ids up to the
end of that step, whose answer matches the reference (Math-Shepherd's soft estimate;
AlphaMath's "process supervision without process"): a step after which the model still often
reaches the right answer is a good step. The last step of a chain needs no roll-outs: its
value is the chain's own grade.

Roll-outs continue the chain's own token ids (its prefix is never re-tokenized from text) and
every step of every chain given is submitted at once, so the engine batches them and its
prefix cache serves the shared part.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ponder.core.generation import SamplingParams
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.grading import Grade, grade


def step_boundaries(
    token_ids: Sequence[int], decode: Callable[[Sequence[int]], str], delimiter: str
) -> list[int]:
    """For each step of the chain but the last (steps as ``split_steps`` finds them), how
    many of its tokens come up to the start of the next step (delimiters included). A token
    that holds both the delimiter and the next step's first characters ends the prefix."""
    text = decode(token_ids)
    starts = []  # character offset of each non-empty step
    offset = 0
    for piece in text.split(delimiter):
        if piece.strip():
            starts.append(offset)
        offset += len(piece) + len(delimiter)
    return [_tokens_reaching(token_ids, decode, start) for start in starts[1:]]


def _tokens_reaching(token_ids: Sequence[int], decode: Callable[[Sequence[int]], str], chars: int) -> int:
    """The fewest leading tokens whose text is at least ``chars`` characters long."""
    low, high = 1, len(token_ids)
    while low < high:
        middle = (low + high) // 2
        if len(decode(token_ids[:middle])) >= chars:
            high = middle
        else:
            low = middle + 1
    return low


async def rollout_values(
    ctx: Run,
    prompt: Sequence[int],
    chain: Sequence[int],
    boundaries: Sequence[int],
    reference: str,
    *,
    rollouts: int,
    sampling: SamplingConfig,
    extractor: AnswerExtractor,
) -> list[float | None]:
    """Per boundary, the share of ``rollouts`` continuations of ``prompt + chain[:boundary]``
    that reach ``reference`` (None when the budget refused them or all were aborted). A
    continuation may write up to what the chain had left of ``sampling.max_tokens``."""

    async def value(boundary: int) -> float | None:
        prefix = [*prompt, *chain[:boundary]]
        params = SamplingParams(
            n=rollouts,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=max(1, sampling.max_tokens - boundary),
            stop=sampling.stop,
            seed=ctx.next_seed(),
        )
        state = await ctx.generate(prefix, params)
        if state is None:
            return None
        before = ctx.decode(chain[:boundary])
        finished = [c for c in state.completions if c.finish_reason != "aborted"]
        if not finished:
            return None
        reached = sum(
            grade(extractor.extract(before + c.text), reference) == Grade.CORRECT for c in finished
        )
        return reached / len(finished)

    return list(await asyncio.gather(*(value(boundary) for boundary in boundaries)))
