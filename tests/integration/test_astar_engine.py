"""A*-decoding on the real engine with the embedded model and the step judge: three
arithmetic problems end to end, usage that adds up, and continuation requests served from
the prefix cache (the prompt is over one 128-token CPU block, so every continuation shares
at least that block with the request before it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.core.generation import GenerationRequest, GenerationState
from ponder.search.expansion import StepConfig
from ponder.search.tree import SearchTree
from ponder.strategies import AStar, SamplingConfig

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SYSTEM_PROMPT = (
    "Answer the question. Work in short steps, one per paragraph, with a blank line between "
    "steps, and end with a line 'Answer: <final answer>'.\n\n"
    "Example question: What is 5 + 8?\nExample solution:\nWe add 5 and 8.\n\n5 + 8 = 13.\n\n"
    "Answer: 13\n\n"
    "Example question: A bag has 9 marbles and 4 are taken out. How many are left?\n"
    "Example solution:\nTaking 4 out of 9 leaves 9 - 4.\n\n9 - 4 = 5.\n\nAnswer: 5"
)
"""157 tokens with a question in SmolLM2's chat template: more than one CPU cache block."""

PROBLEMS = [("What is 3 + 4?", "7"), ("What is 10 + 10?", "20"), ("What is 6 times 2?", "12")]
BLOCK = 128


class Recording(VllmBackend):
    """The same engine, keeping every request with its final state."""

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


def _as_scored(tree: SearchTree, node_id: int) -> str:
    """The text the step judge reads for a node: each step closed by the delimiter."""
    return "".join(
        step.text if step.text.endswith("\n\n") else step.text + "\n\n"
        for step in tree.path(node_id)
    )


async def test_astar_solves_arithmetic_end_to_end_with_honest_usage(engine: VllmBackend) -> None:
    strategy = AStar(
        k=4, max_steps=4, system_prompt=SYSTEM_PROMPT,
        step=StepConfig(max_step_tokens=48), sampling=SamplingConfig(max_tokens=144),
    )
    backends = [Recording(engine) for _ in PROBLEMS]
    results = await asyncio.gather(*(
        asolve(question, strategy=strategy, backend=backend, budget={"generated_tokens": 3000})
        for (question, _), backend in zip(PROBLEMS, backends)
    ))
    correct, continuations = 0, []
    for result, backend, (_, reference) in zip(results, backends, PROBLEMS):
        tree, usage, details = result.tree, result.usage, result.details
        # it ran to a finished, scored answer
        assert result.best is not None and result.best.finish_reason is not None
        assert result.answer is not None and result.best.score is not None
        correct += result.answer == reference
        # the answer is best by priority: no state left waiting has a lower f
        waiting = [n for n in tree.nodes() if "f" in n.meta and n.id not in details["expanded"]]
        assert all(n.meta["f"] >= details["selected_f"] for n in waiting)
        assert details["expanded"][0] == 0 and details["expansions"] == len(details["expanded"])
        steps = [s for s in backend.calls if s.request.params.include_stop_str_in_output]
        judged = [s for s in backend.calls if not s.request.params.include_stop_str_in_output]
        # usage adds up: step requests made the tree, judge requests one token each
        assert usage.model_calls == len(steps) == details["expansions"]
        assert sum(s.usage.generated_tokens for s in steps) == tree.total_cost
        assert usage.generated_tokens == tree.total_cost + sum(s.usage.generated_tokens for s in judged)
        assert usage.prompt_tokens == sum(s.usage.prompt_tokens for s in backend.calls)
        # each distinct path scored once (a repeat of a sibling is pruned before scoring; the
        # scorer's cache serves a path whose text, every step closed by the delimiter as the
        # step scorer reads it, equals another's)
        scored = [n for n in tree.nodes() if not (n.score_reason or "").startswith("repeats")]
        paths = {_as_scored(tree, n.id) for n in scored}
        assert usage.verifier_calls == len(paths)
        assert 0 < usage.thinking_tokens <= usage.generated_tokens
        # continuation requests (every step request after the first) hit the prefix cache
        root = len(tree.root.token_ids)
        continuations += [s for s in steps if len(s.request.prompt_token_ids) > root]
    # a problem whose root children all answered in one step has no continuation; not all do
    assert continuations, "no search expanded past the root"
    assert all(s.cached_prompt_tokens >= BLOCK for s in continuations)
    print(f"astar: {correct} of {len(PROBLEMS)} correct")
    assert engine.engine.get_num_unfinished_requests() == 0
