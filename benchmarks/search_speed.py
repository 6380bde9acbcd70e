"""Step search through ponder against the raw engine and a naive driver, in one run, one engine.

For beam search and particle filtering with N paths over the arithmetic problems (all
problems at once, as an experiment run submits them), three figures:

1. Prefix cache on continuations: of the prompt tokens of every step request that continues
   a path (its prompt is longer than the problem's rendered prompt: every request but a
   problem's first step), the share the engine served from its prefix cache
   (sum of ``cached_prompt_tokens`` / sum of ``prompt_tokens``, per request as the engine
   reported it). Target >= 80%.
2. Throughput against the ceiling: ponder's generated tokens per second of wall time, over
   the raw engine's at the same number of concurrent sequences (problems x N): one
   ``AsyncLLM.generate`` request per problem with n=N, straight to the engine (no ponder code,
   final output only), each sequence generating exactly the search's mean tokens per path
   (EOS ignored), with token logprobs off in both. Target >= 0.70.
3. Wall time against a naive driver: the same strategy objects (same N, steps, scorer) run
   through a backend that sends one request at a time, one sample per request, and re-sends
   each prompt as text (decoded and tokenized again, as a text API client would), problems
   one after another. The engine is the same one, prefix cache on, as a server's would be.
   Both runs sample, so their token counts differ a little: the ratio per generated token is
   printed too. Target >= 5x.

What bounds figure 2: a step search waits, per problem, for its slowest path to end each step
(scoring, selection and resampling need every child). So the engine runs at least as many
steps as the longest problem's sum over its steps of the longest step ("barrier steps"),
against the ceiling's one step per token. The engine's cost per step, measured here from the
ceiling at N and at 1 sequence per problem, is close to ``a + c x sequences`` (``a``: reading
the weights, paid per step whatever the batch; ``c``: the compute per sequence), so no search
with these steps can take less than ``barrier steps x a + generated tokens x c``: the
benchmark prints that bound next to the ratio.

Step scorer: ``StepShape`` below, a free text heuristic (no model call, microseconds per
step), so that generation dominates and the figures measure the search's use of the engine.

    python benchmarks/search_speed.py [--n 8] [--problems 8] [--max-steps 4] [--step-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import arithmetic

from ponder.api import asolve
from ponder.backends.pool import engines
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.search.expansion import StepConfig
from ponder.search.tree import SearchTree
from ponder.strategies import BeamSearch, ParticleFilter, SamplingConfig, Strategy
from ponder.verifiers.base import Score
from ponder.verifiers.process import ProcessVerifier

if TYPE_CHECKING:
    from ponder.runtime import Run as SolveRun


class StepShape(ProcessVerifier):
    """A free step scorer: a step that computes (digits, operators, '=') scores higher. It says
    little about correctness; it is here so that scoring costs nothing next to generation."""

    counts_as_call: ClassVar[bool] = False

    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: SolveRun
    ) -> list[list[float | None] | Score]:
        return [[_shape(step) for step in steps] for steps in paths]


def _shape(step: str) -> float:
    arithmetic_chars = sum(ch.isdigit() or ch in "+-*/=x" for ch in step)
    return 0.2 + 0.75 * min(1.0, 4 * arithmetic_chars / max(1, len(step)))


@dataclass
class Run:
    results: list[Result]
    seconds: float
    calls: list[list[GenerationState]]
    """Per problem, every request's final state."""

    @property
    def generated(self) -> int:
        return sum(r.usage.generated_tokens for r in self.results)


class Recording(VllmBackend):
    """The same engine, keeping every request's final state."""

    def __init__(self, inner: VllmBackend) -> None:
        super().__init__(inner.engine, inner.tokenizer, inner.config, inner.on_cpu)
        self.calls: list[GenerationState] = []

    async def generate(
        self, request: GenerationRequest, *, timeout: float | None = None,
        until: Callable[[GenerationState], bool] | None = None,
        state: GenerationState | None = None,
    ) -> GenerationState:
        state = await super().generate(request, timeout=timeout, until=until, state=state)
        self.calls.append(state)
        return state


class Naive(Recording):
    """One engine request at a time (a lock shared by every problem), one sample per request,
    and the prompt sent as text: decoded with its template markers and tokenized again."""

    def __init__(self, inner: VllmBackend, lock: asyncio.Lock) -> None:
        super().__init__(inner)
        self.lock = lock

    async def generate(
        self, request: GenerationRequest, *, timeout: float | None = None,
        until: Callable[[GenerationState], bool] | None = None,
        state: GenerationState | None = None,
    ) -> GenerationState:
        text = self.tokenizer.decode(list(request.prompt_token_ids), skip_special_tokens=False)
        one = GenerationRequest(
            prompt_token_ids=tuple(self.encode(text)),
            params=request.params.model_copy(update={"n": 1}),
        )
        merged = state if state is not None else GenerationState.start(request)
        merged.prompt_tokens = 0  # counted per request actually sent
        for index in range(request.params.n):
            async with self.lock:
                state = await super().generate(one, timeout=timeout, until=until)
            sample = state.completions[0]
            sample.index = index
            merged.completions[index] = sample
            merged.prompt_tokens += state.prompt_tokens
            merged.cached_prompt_tokens += state.cached_prompt_tokens
        merged.close()
        return merged


async def search_round(
    engine: VllmBackend, strategy: Strategy, problems: list[Problem], naive: bool
) -> Run:
    """ponder: every problem at once. Naive: one after another, one request at a time."""
    lock = asyncio.Lock()
    backends = [Naive(engine, lock) if naive else Recording(engine) for _ in problems]
    started = time.perf_counter()
    if naive:
        results = [await asolve(p, strategy=strategy, backend=b) for p, b in zip(problems, backends)]
    else:
        results = list(await asyncio.gather(
            *(asolve(p, strategy=strategy, backend=b) for p, b in zip(problems, backends))
        ))
    return Run(results, time.perf_counter() - started, [b.calls for b in backends])


def continuation_cache_share(run: Run, roots: Sequence[int]) -> tuple[float, int, int]:
    """(cached / prompt tokens over continuation requests, how many there were, and the
    prompt tokens the engine computed again: the part the cache did not serve, once per
    sample, since each sample of a request computes its prompt's partial last block)."""
    continuing = [
        state for calls, root in zip(run.calls, roots) for state in calls
        if len(state.request.prompt_token_ids) > root
    ]
    prompt = sum(s.prompt_tokens for s in continuing)
    cached = sum(s.cached_prompt_tokens for s in continuing)
    recomputed = sum(
        (s.prompt_tokens - s.cached_prompt_tokens) * s.request.params.n for s in continuing
    )
    return (cached / prompt if prompt else 0.0), len(continuing), recomputed


def cacheable_share(run: Run, roots: Sequence[int], block_size: int) -> float:
    """The most of the continuation requests' prompt tokens any prefix cache with this block
    size could serve: whole blocks only, and never a prompt's last token (the engine computes
    it to sample the first new token), so ``(length - 1) // block_size`` blocks per prompt.
    With short prompts this ceiling, not the search, bounds the share."""
    continuing = [
        len(state.request.prompt_token_ids) for calls, root in zip(run.calls, roots) for state in calls
        if len(state.request.prompt_token_ids) > root
    ]
    return sum((length - 1) // block_size * block_size for length in continuing) / max(1, sum(continuing))


async def ceiling_round(
    engine: VllmBackend, prompts: list[list[int]], n: int, length: int, sampling: SamplingConfig
) -> tuple[int, float]:
    """The raw engine: one request per prompt with n sequences of exactly ``length`` tokens."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    params = SamplingParams(
        n=n, temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=length, ignore_eos=True,
        output_kind=RequestOutputKind.FINAL_ONLY,
    )

    async def one(index: int, prompt: list[int]) -> int:
        final = None
        request_id = f"search-ceiling-{time.time_ns()}-{index}"
        async for final in engine.engine.generate(TokensPrompt(prompt_token_ids=prompt), params, request_id):
            pass
        return sum(len(o.token_ids) for o in final.outputs)

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    return sum(tokens), time.perf_counter() - started


def barrier_steps(results: Sequence[Result]) -> int:
    """Engine steps the search's barriers force: a problem's step ends when its longest
    request does (every node of step k sits at depth k), and problems run side by side."""
    def one(tree: SearchTree) -> int:
        longest: dict[int, int] = {}
        for node in tree.nodes():
            longest[node.depth] = max(longest.get(node.depth, 0), len(node.token_ids))
        return sum(longest.values())

    return max(one(result.tree) for result in results)


def step_costs(
    wide_seconds: float, narrow_seconds: float, length: int, problems: int, n: int
) -> tuple[float, float]:
    """Seconds per engine step (``a``) and per sequence in it (``c``), from the wall times of
    ceiling rounds of ``length`` tokens with ``n`` (wide) and 1 (narrow) sequences per problem."""
    wide_step, narrow_step = wide_seconds / length, narrow_seconds / length
    per_sequence = (wide_step - narrow_step) / (problems * (n - 1))
    return narrow_step - problems * per_sequence, per_sequence


def strategies_under_test(args: argparse.Namespace) -> dict[str, Strategy]:
    shared = {
        "n": args.n,
        "max_steps": args.max_steps,
        "step": StepConfig(max_step_tokens=args.step_tokens),
        "sampling": SamplingConfig(max_tokens=args.max_tokens),
        "verifier": StepShape(),
    }
    return {
        "beam": BeamSearch(beam_width=args.beam_width, **shared),
        "particle_filter": ParticleFilter(**shared),
    }


async def main(args: argparse.Namespace) -> None:
    engine = await engines.backend("embedded")
    problems = arithmetic.problems(args.problems)
    await ceiling_round(engine, [engine.render(problems[0])], 2, 8, SamplingConfig())  # warm-up
    print(f"N={args.n}, {len(problems)} problems, max_steps={args.max_steps}, "
          f"step tokens <= {args.step_tokens}, chain tokens <= {args.max_tokens}, scorer: StepShape")
    for name, strategy in strategies_under_test(args).items():
        prompts = [engine.render(p, strategy.system_prompt) for p in problems]
        roots = [len(prompt) for prompt in prompts]
        ours = await search_round(engine, strategy, problems, naive=False)
        share, continuing, recomputed = continuation_cache_share(ours, roots)
        sequences = len(problems) * args.n
        length = max(1, round(ours.generated / sequences))
        ceiling_tokens, ceiling_seconds = await ceiling_round(
            engine, prompts, args.n, length, strategy.sampling
        )
        narrow_tokens, narrow_seconds = await ceiling_round(
            engine, prompts, 1, length, strategy.sampling
        )
        per_step, per_sequence = step_costs(
            ceiling_seconds, narrow_seconds, length, len(problems), args.n
        )
        barriers = barrier_steps(ours.results)
        best_seconds = barriers * per_step + ours.generated * per_sequence
        naive = await search_round(engine, strategy, problems, naive=True)
        ours_rate, ceiling_rate = ours.generated / ours.seconds, ceiling_tokens / ceiling_seconds
        per_token = (naive.seconds / naive.generated) / (ours.seconds / ours.generated)
        print(
            f"\n{name}:\n"
            f"  ponder:  {ours.generated} tokens in {ours.seconds:.1f} s = {ours_rate:.1f} tok/s; "
            f"{sum(r.usage.model_calls for r in ours.results)} requests\n"
            f"  prefix cache on continuation requests: {share:.1%} of their prompt tokens "
            f"({continuing} requests) (target >= 80%); {recomputed} tokens computed again "
            f"({recomputed / ours.generated:.0%} of the generated tokens)\n"
            f"  raw engine ceiling, {sequences} sequences x {length} tokens: "
            f"{ceiling_rate:.1f} tok/s; ponder/ceiling: {ours_rate / ceiling_rate:.3f} (target >= 0.70)\n"
            f"  what bounds it: {barriers} engine steps forced by the step barriers against the "
            f"ceiling's {length}; engine step = {per_step * 1e3:.0f} ms + {per_sequence * 1e3:.1f} ms "
            f"x sequences ({len(problems)} sequences: {narrow_tokens / narrow_seconds:.1f} tok/s); best "
            f"possible with these steps: {ours.generated / best_seconds / ceiling_rate:.3f} of the "
            f"ceiling, ponder reaches {best_seconds / ours.seconds:.0%} of that\n"
            f"  naive driver: {naive.generated} tokens in {naive.seconds:.1f} s; "
            f"naive/ponder wall: {naive.seconds / ours.seconds:.2f}x, "
            f"per generated token: {per_token:.2f}x (target >= 5x)"
        )
    await engine.close()


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="paths (beam) / particles (filter)")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--step-tokens", type=int, default=64, help="most tokens per step")
    parser.add_argument("--max-tokens", type=int, default=256, help="most tokens per path")
    parser.add_argument("--beam-width", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
