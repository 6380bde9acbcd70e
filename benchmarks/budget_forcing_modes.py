"""Budget forcing inside the engine against stop-and-resubmit, on the embedded model.

Each arithmetic question is solved by ``budget_forcing`` in both modes on the same engine
(the order alternates per question, so neither always runs on a warmer cache). Per mode:
wall time, generated tokens, model calls, prompt tokens sent (each round trip resubmits the
chain so far; the prefix cache serves whole 128-token blocks of it on CPU), forced closes
and continuations, and answers graded against the reference. The two modes sample
differently, so their token counts differ: compare seconds per generated token as well.

It also times the logits processor alone on one step's logits, with no request using it
(what every other request on the engine pays) and with every row forced.

    python benchmarks/budget_forcing_modes.py [--problems 3] [--n 2] [--min 32] [--max 96]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import defaultdict
from types import SimpleNamespace

import arithmetic

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.strategies import BudgetForcing
from ponder.verifiers import grade

MODES = ("in_engine", "round_trip")


async def compare(args: argparse.Namespace) -> None:
    engine = await engines.backend("embedded")
    totals: dict[str, dict[str, float]] = {mode: defaultdict(float) for mode in MODES}
    for number, problem in enumerate(arithmetic.problems(args.problems)):
        order = MODES if number % 2 == 0 else MODES[::-1]
        for mode in order:
            strategy = BudgetForcing(
                min_thinking_tokens=args.min, max_thinking_tokens=args.max,
                max_answer_tokens=args.answer, max_continuations=args.continuations,
                n=args.n, mode=mode,
            )
            started = time.perf_counter()
            result = await asolve(problem, strategy=strategy, backend=engine)
            wall = time.perf_counter() - started
            usage, details, total = result.usage, result.details, totals[mode]
            total["wall"] += wall
            total["generated"] += usage.generated_tokens
            total["thinking"] += usage.thinking_tokens
            total["calls"] += usage.model_calls
            total["prompt"] += usage.prompt_tokens
            total["cached"] += usage.cached_prompt_tokens
            total["closes"] += details["forced_closes"]
            total["continuations"] += details["forced_continuations"] or 0
            total["words"] += sum(c["continuation_words"] for c in details["chains"])
            total["right"] += grade(result.answer, problem.reference) == "correct"
            print(
                f"{problem.prompt[:40]:40} {mode:10} {wall:7.1f} s {usage.generated_tokens:5} "
                f"tokens {usage.model_calls:3} calls  answer {result.answer!r}"
            )
    print(f"\n{args.problems} questions, n={args.n}, thinking {args.min}..{args.max}, "
          f"answer {args.answer}:")
    for mode in MODES:
        t = totals[mode]
        print(
            f"  {mode:10} wall {t['wall']:7.1f} s  generated {t['generated']:6.0f} "
            f"(thinking {t['thinking']:.0f})  {t['wall'] / t['generated'] * 1000:6.1f} ms/token  "
            f"calls {t['calls']:3.0f}  prompt tokens {t['prompt']:6.0f} (cached {t['cached']:.0f})"
            f"  forced closes {t['closes']:.0f}  continuations forced {t['continuations']:.0f} "
            f"/ 'Wait' in thinking {t['words']:.0f}  right {t['right']:.0f}/{args.problems}"
        )
    fast, slow = totals["in_engine"], totals["round_trip"]
    print(
        f"  round_trip / in_engine: wall {slow['wall'] / fast['wall']:.2f}x, per generated "
        f"token {(slow['wall'] / slow['generated']) / (fast['wall'] / fast['generated']):.2f}x, "
        f"model calls {slow['calls'] / fast['calls']:.1f}x, prompt tokens "
        f"{slow['prompt'] / fast['prompt']:.1f}x"
    )
    await engine.close()


def processor_cost(rows: int = 64, steps: int = 200) -> None:
    """Microseconds per step of the processor on a (rows x vocab) logits tensor."""
    import torch
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    from ponder.core.forcing import FORCING_KEY, ForcingArgs
    from ponder.backends.logits_processors import BudgetForcingProcessor

    vocab = 49152
    args = ForcingArgs(
        min_thinking=10_000, max_thinking=20_000, max_answer=16, max_continuations=10_000,
        redirects=((21350, (33359,)), (19842, (22297,))), stop_continuation=(33359,),
        closes=((21350, 42), (19842, 42)), answer_prompt=(198, 21350, 42),
    )
    for label, extra in (("no request uses it", None), ("every row below its minimum", args)):
        config = SimpleNamespace(model_config=SimpleNamespace(seed=0))
        proc = BudgetForcingProcessor(config, torch.device("cpu"), False)  # type: ignore[arg-type]
        params = SamplingParams(
            temperature=0.7, stop_token_ids=[2],
            extra_args=None if extra is None else {FORCING_KEY: extra.model_dump(mode="json")},
        )
        added = [(i, params, [1], [7] * 20) for i in range(rows)]
        proc.update_state(BatchUpdate(rows, removed=[], added=added, moved=[]))
        logits = torch.randn(rows, vocab)
        started = time.perf_counter()
        for _ in range(steps):
            proc.update_state(None)
            proc.apply(logits)
        per_step = (time.perf_counter() - started) / steps * 1e6
        print(f"processor, {rows} rows, {label}: {per_step:9.1f} us per step")


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=3)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--min", type=int, default=32)
    parser.add_argument("--max", type=int, default=96)
    parser.add_argument("--answer", type=int, default=16)
    parser.add_argument("--continuations", type=int, default=2)
    options = parser.parse_args()
    processor_cost()
    asyncio.run(compare(options))
