"""How fast short-m@k stops the chains it no longer needs, on the embedded model.

For short-1@k and short-3@k with k=16, a recording wrapper around the engine notes, at every
streamed update, the time and the tokens generated so far. From that: the moment the m-th
chain finished on its own, the tokens counted after it (as a share of all tokens) and the
wall time of the request against that moment.

ponder aborts on the very update that reports the m-th finish, so tokens *counted* after it
are zero unless updates lag. The engine is by then computing the next step, and vLLM's engine
core applies aborts that arrive during a step before it reports the step's tokens
(``EngineCore.step``: ``_process_aborts_queue`` before ``update_from_output``): that step's
tokens for the stopped chains are computed but never reported, and no later step includes
them. So the engine generates exactly one unreported token per stopped chain at most, and the
printed share adds that bound to the count.

short-m@k is for chains that reason before they answer, so the chains are asked to think
step by step (``--system-prompt``): with one-line answers of ten tokens, a single step of
overhang is already a tenth of the work, which says more about the prompt than the stop.

    python benchmarks/short_mk_cancellation.py [--k 16] [--problems 4] [--set word_problems]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable

import arithmetic

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.strategies import ShortMK

PROBLEM_SETS = {"arithmetic": arithmetic.problems, "word_problems": arithmetic.word_problems}

REASONING_PROMPT = "Reason step by step in full sentences, then end with 'Answer: <final answer>'."


class RecordingBackend(VllmBackend):
    """The same engine, with a timeline of (seconds, tokens so far, chains stopped) per request."""

    def __init__(self, inner: VllmBackend) -> None:
        super().__init__(inner.engine, inner.tokenizer, inner.config, inner.on_cpu)
        self.timelines: list[list[tuple[float, int, int]]] = []
        self.wall: list[float] = []

    async def generate(
        self, request: GenerationRequest, *, timeout: float | None = None,
        until: Callable[[GenerationState], bool] | None = None,
        state: GenerationState | None = None,
    ) -> GenerationState:
        started, timeline = time.perf_counter(), []

        def record(state: GenerationState) -> bool:
            stopped = sum(c.finish_reason == "stop" for c in state.completions)
            timeline.append((time.perf_counter() - started, state.usage.generated_tokens, stopped))
            return until(state) if until is not None else False

        state = await super().generate(request, timeout=timeout, until=record, state=state)
        self.timelines.append(timeline)
        self.wall.append(time.perf_counter() - started)
        return state


async def main(args: argparse.Namespace) -> None:
    engine = await engines.backend("embedded")
    for m in (1, 3):
        backend = RecordingBackend(engine)
        strategy = ShortMK(k=args.k, m=m, system_prompt=args.system_prompt)
        results = [await asolve(p, strategy=strategy, backend=backend) for p in PROBLEM_SETS[args.set](args.problems)]
        after_share, wall_ratio = [], []
        for result, timeline, wall in zip(results, backend.timelines, backend.wall):
            moment = next((t for t in timeline if t[2] >= m), None)
            if moment is None:  # fewer than m chains finished on their own
                continue
            unreported = result.details["stopped"]  # one step of each stopped chain, at most
            total = result.usage.generated_tokens + unreported
            after_share.append((total - moment[1]) / total)
            wall_ratio.append(wall / moment[0])
        mean_tokens = sum(r.usage.generated_tokens for r in results) / len(results)
        print(
            f"short-{m}@{args.k} over {len(after_share)} problems, {mean_tokens:.0f} tokens per "
            f"problem: tokens the engine generated after finish #{m}, unreported ones included: "
            f"{max(after_share):.1%} of all at most (target < 5%); wall / time of "
            f"finish #{m}: {max(wall_ratio):.3f} at most (target <= 1.10)"
        )
    await engine.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--set", choices=sorted(PROBLEM_SETS), default="arithmetic",
                        help="word_problems: longer chains, so one step of overhang weighs less")
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--system-prompt", default=REASONING_PROMPT)
    asyncio.run(main(parser.parse_args()))
