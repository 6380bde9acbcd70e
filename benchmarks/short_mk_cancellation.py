"""How fast short-m@k stops the chains it no longer needs, on the embedded model.

For short-1@k and short-3@k with k=16, a recording wrapper around the engine notes, at every
streamed update, the time and the tokens generated so far. From that: the moment the m-th
chain finished on its own, the tokens counted after it (as a share of all tokens) and the
wall time of the request against that moment.

ponder aborts on the very update that reports the m-th finish, so tokens *counted* after it
are zero unless updates lag. The engine may still run one more decode step for each chain
it is stopping before the abort reaches it; the stream never reports those, so the bound
printed beside the count is one token per stopped chain, as a share of all tokens.

    python benchmarks/short_mk_cancellation.py [--k 16] [--problems 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable

import arithmetic

from ponder.api import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.strategies import ShortMK


class RecordingBackend(VllmBackend):
    """The same engine, with a timeline of (seconds, tokens so far, chains stopped) per request."""

    def __init__(self, inner: VllmBackend) -> None:
        super().__init__(inner.engine, inner.tokenizer, inner.config, inner.on_cpu)
        self.timelines: list[list[tuple[float, int, int]]] = []
        self.wall: list[float] = []

    async def generate(
        self, request: GenerationRequest, *, timeout: float | None = None,
        until: Callable[[GenerationState], bool] | None = None,
    ) -> GenerationState:
        started, timeline = time.perf_counter(), []

        def record(state: GenerationState) -> bool:
            stopped = sum(c.finish_reason == "stop" for c in state.completions)
            timeline.append((time.perf_counter() - started, state.usage.generated_tokens, stopped))
            return until(state) if until is not None else False

        state = await super().generate(request, timeout=timeout, until=record)
        self.timelines.append(timeline)
        self.wall.append(time.perf_counter() - started)
        return state


async def main(args: argparse.Namespace) -> None:
    engine = await VllmBackend.shared()
    for m in (1, 3):
        backend = RecordingBackend(engine)
        strategy = ShortMK(k=args.k, m=m)
        results = [await asolve(p, strategy=strategy, backend=backend) for p in arithmetic.problems(args.problems)]
        after_share, unseen_bound, wall_ratio = [], [], []
        for result, timeline, wall in zip(results, backend.timelines, backend.wall):
            moment = next((t for t in timeline if t[2] >= m), None)
            if moment is None:  # fewer than m chains finished on their own
                continue
            total = result.usage.generated_tokens
            after_share.append((total - moment[1]) / total)
            unseen_bound.append(result.details["stopped"] / total)
            wall_ratio.append(wall / moment[0])
        print(
            f"short-{m}@{args.k} over {len(after_share)} problems: tokens counted after finish "
            f"#{m}: {max(after_share):.1%} of all at most, plus at most {max(unseen_bound):.1%} "
            f"unreported (target < 5%); wall / time of finish #{m}: {max(wall_ratio):.3f} at "
            f"most (target <= 1.10)"
        )
    await engine.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--problems", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
