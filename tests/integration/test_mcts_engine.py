"""MCTS (parallel simulations, step judge plus graded roll-outs) and depth-first Tree of
Thoughts on the real engine with the embedded model: three arithmetic problems end to end,
usage that adds up, visit counts that add up, and continuations served from the prefix cache
(the prompt is over one 128-token CPU block)."""

from __future__ import annotations

import asyncio

import pytest
from test_astar_engine import BLOCK, PROBLEMS, SYSTEM_PROMPT, Recording

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.search.expansion import StepConfig
from ponder.strategies import MCTS, SamplingConfig, Strategy, TreeOfThoughtsDFS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

STEP = StepConfig(max_step_tokens=48)
SAMPLING = SamplingConfig(max_tokens=144)


async def _solve_all(strategy: Strategy, engine: VllmBackend) -> list[tuple]:
    """Every problem at once, each on its own recording view of the one engine."""
    backends = [Recording(engine) for _ in PROBLEMS]
    results = await asyncio.gather(*(
        asolve(question, strategy=strategy, backend=backend, budget={"generated_tokens": 4000})
        for (question, _), backend in zip(PROBLEMS, backends)
    ))
    return list(zip(results, backends, [reference for _, reference in PROBLEMS]))


def _check_usage_and_cache(result, backend) -> list:  # type: ignore[no-untyped-def]
    """Usage adds up to the engine's requests; returns the continuation requests."""
    tree, usage = result.tree, result.usage
    steps = [s for s in backend.calls if s.request.params.include_stop_str_in_output]
    judged = [s for s in backend.calls if not s.request.params.include_stop_str_in_output]
    assert usage.model_calls == len(steps)  # steps and roll-outs; the judge's are verifier calls
    assert sum(s.usage.generated_tokens for s in steps) == tree.total_cost
    assert usage.generated_tokens == tree.total_cost + sum(s.usage.generated_tokens for s in judged)
    assert usage.prompt_tokens == sum(s.usage.prompt_tokens for s in backend.calls)
    assert usage.verifier_calls >= 1
    root = len(tree.root.token_ids)
    return [s for s in steps if len(s.request.prompt_token_ids) > root]


async def test_parallel_mcts_solves_arithmetic_with_honest_usage(engine: VllmBackend) -> None:
    strategy = MCTS(
        k=3, simulations=6, parallel=3, max_depth=3, rollout_weight=0.5,
        system_prompt=SYSTEM_PROMPT, step=STEP, sampling=SAMPLING,
    )
    correct, answered, continuations, widest = 0, 0, [], 0
    for result, backend, reference in await _solve_all(strategy, engine):
        assert result.best is not None  # a path is always chosen
        answered += result.answer is not None
        correct += result.answer == reference
        details, tree = result.details, result.tree
        assert details["waves"][0] == 1  # the root alone
        # descents that end at a finished leaf are simulations too, with no expansion
        assert sum(details["waves"]) <= details["simulations"] <= 6
        widest = max(widest, *details["waves"])
        # every node's visits: its own evaluation plus those below it (and terminal re-visits)
        for node in tree:
            below = sum(c.meta.get("visits", 0) for c in tree.children(node.id))
            if "visits" in node.meta:
                assert node.meta["visits"] >= below + (0 if node.is_root else 1)
        continuations += _check_usage_and_cache(result, backend)
    # The model may word a path's answer so that no number can be read from it ("One hundred
    # and one."): a problem without an answer is the model's doing, three are ponder's.
    assert answered >= 1
    assert widest > 1, "no wave expanded several leaves together"
    assert continuations and all(s.cached_prompt_tokens >= BLOCK for s in continuations)
    print(f"mcts: {correct} of {len(PROBLEMS)} correct")
    assert engine.engine.get_num_unfinished_requests() == 0


async def test_tot_dfs_solves_arithmetic_with_honest_usage(engine: VllmBackend) -> None:
    strategy = TreeOfThoughtsDFS(
        k=3, threshold=0.2, max_depth=3, max_expansions=4,
        system_prompt=SYSTEM_PROMPT, step=STEP, sampling=SAMPLING,
    )
    correct, answered, continuations = 0, 0, []
    for result, backend, reference in await _solve_all(strategy, engine):
        assert result.best is not None
        answered += result.answer is not None
        correct += result.answer == reference
        assert result.details["expanded"][0] == 0
        assert len(result.details["expanded"]) <= 4
        continuations += _check_usage_and_cache(result, backend)
    assert answered >= 1  # as for MCTS: an unreadable answer is the model's doing
    assert all(s.cached_prompt_tokens >= BLOCK for s in continuations)
    print(f"tot_dfs: {correct} of {len(PROBLEMS)} correct")
    assert engine.engine.get_num_unfinished_requests() == 0
