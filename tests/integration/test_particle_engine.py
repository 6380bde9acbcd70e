"""Particle filtering and particle Gibbs on the real engine with the embedded model, judged
step by step by the same model (step_judge): three arithmetic problems solved at once end to
end, every token the engine spent accounted for in the runs' ledgers, and the prefix cache
serving the continuation requests (CPU caching works in whole 128-token blocks; the few-shot
system prompt below is longer than one block, so every request after the first finds it)."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from ponder.backends.vllm_engine import VllmBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.core.usage import Usage
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.strategies import ParticleFilter, ParticleGibbs, SamplingConfig

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SYSTEM_PROMPT = (
    "Solve the problem step by step. Write each step as a short sentence and leave a blank "
    "line between steps. End with 'Answer: <number>'.\n\n"
    "Example.\nQuestion: What is 12 + 30?\n\n"
    "Step 1: Add the tens: 10 + 30 = 40.\n\nStep 2: Add the ones: 40 + 2 = 42.\n\nAnswer: 42\n\n"
    "Example.\nQuestion: What is 9 times 4?\n\n"
    "Step 1: 9 times 4 is 9 + 9 + 9 + 9.\n\nStep 2: 9 + 9 + 9 + 9 = 36.\n\nAnswer: 36"
)
"""191 tokens with a question: more than one 128-token block."""
BLOCK = 128

PROBLEMS = [
    Problem(prompt="What is 17 + 25?", reference="42"),
    Problem(prompt="What is 6 times 7?", reference="42"),
    Problem(prompt="What is 100 - 58?", reference="42"),
]
COMMON = {
    "n": 4,
    "max_steps": 5,
    "system_prompt": SYSTEM_PROMPT,
    "step": StepConfig(max_step_tokens=32),
    "sampling": SamplingConfig(max_tokens=128),
}


async def solve_all(
    engine: VllmBackend, strategy: ParticleFilter, budget: Budget | None = None
) -> tuple[list[Result], Usage]:
    """Every problem at once (their requests batch together), and what the engine did."""
    before = dataclasses.replace(engine.usage)
    results = await asyncio.gather(*(
        strategy.run(problem, Run(engine, Ledger(budget or Budget()), random.Random(seed)))
        for seed, problem in enumerate(PROBLEMS)
    ))
    done = dataclasses.replace(engine.usage)
    delta = Usage(**{
        f.name: getattr(done, f.name) - getattr(before, f.name) for f in dataclasses.fields(Usage)
    })
    return list(results), delta


@pytest.mark.parametrize(
    "strategy",
    [ParticleFilter(**COMMON), ParticleGibbs(**COMMON, iterations=2)],
    ids=["particle_filter", "particle_gibbs"],
)
async def test_solves_arithmetic_with_every_token_accounted_for(
    engine: VllmBackend, strategy: ParticleFilter
) -> None:
    results, spent = await solve_all(engine, strategy)
    for result in results:
        assert result.answer is not None and not result.budget_exhausted
        assert result.details["weights"] and sum(result.details["weights"]) == pytest.approx(1.0)
        steps, generation = result.details["steps"], result.details["generation"]
        # Every generated step token is a node of the tree; every step request is a model call.
        assert generation["generated_tokens"] == result.tree.total_cost
        assert result.usage.model_calls == generation["model_calls"]
        assert generation["model_calls"] == sum(s["model_calls"] for s in steps)
        paths = {result.tree.text(n.id) for n in result.tree.nodes()}
        assert {c.text for c in result.candidates} <= paths
        for iteration in result.details.get("iterations", [])[1:]:
            # Particle Gibbs: the reference, replayed from the filter before, is a candidate.
            references = iteration["references"]
            assert references
            assert {result.tree.text(n) for n in references} <= {c.text for c in result.candidates}
            assert all(n.meta["iteration"] == 0 for n in result.tree.path(references[0]))
        # Continuations are sent as ids: the prompt's first block is never computed again.
        for record in steps:
            if record["step"] > 1:
                assert record["cached_prompt_tokens"] >= BLOCK * record["model_calls"]
    charged = sum((r.usage for r in results), Usage())
    assert (charged.prompt_tokens, charged.generated_tokens, charged.cached_prompt_tokens) == (
        spent.prompt_tokens, spent.generated_tokens, spent.cached_prompt_tokens
    )
    # The judge's requests are the engine calls not charged as model calls; each makes one token.
    judge_requests = spent.model_calls - charged.model_calls
    assert judge_requests > 0
    assert spent.generated_tokens - sum(r.tree.total_cost for r in results) == judge_requests
    assert charged.cached_prompt_tokens > 0
    assert engine.engine.get_num_unfinished_requests() == 0
    correct = sum(r.answer == p.reference for r, p in zip(results, PROBLEMS))
    print(f"{strategy.name}: {correct}/3 correct, usage {charged.to_dict()}")


async def test_a_token_budget_ends_the_filter_with_an_answer(engine: VllmBackend) -> None:
    ctx = Run(engine, Ledger(Budget(total_tokens=500)), random.Random(0))
    result = await ParticleFilter(**COMMON).run(PROBLEMS[0], ctx)
    assert result.budget_exhausted and result.exhausted_by == "total_tokens"
    assert result.usage.total_tokens <= 500
    assert result.selected_index is not None
    assert engine.engine.get_num_unfinished_requests() == 0
