"""Search strategies with a step generator: the same search, each child written by its own
session call (the plain generator reproduces plain sampling's tree), all calls of a step at
once, the budget refusing steps it cannot hold."""

from __future__ import annotations

from collections import Counter

from search_helpers import PROBLEM, SCORES, STEPS, PathScores, context, path_backend

from ponder.budgets import Budget
from ponder.search.expansion import StepConfig
from ponder.strategies import BeamSearch, DiverseVerifierTreeSearch, SamplingConfig
from ponder.strategies.step_generators import StepGenerator

FIELDS = {"n": 4, "beam_width": 2, "max_steps": 3, "sampling": SamplingConfig(max_tokens=64),
          "verifier": PathScores(table=SCORES), "selection": "highest"}


def one_call_per_child():
    """The next child's step at each path, in the order the calls come."""
    asked: Counter[str] = Counter()

    def step(path: str, sample: int, call: int) -> str:
        asked[path] += 1
        return STEPS[path][asked[path] - 1]

    return path_backend(step)


async def test_the_plain_generator_writes_the_tree_plain_sampling_writes() -> None:
    sampled = await BeamSearch(**FIELDS).run(PROBLEM, context(path_backend(STEPS)))
    ctx = context(one_call_per_child())
    generated = await BeamSearch(**FIELDS, step_generator="sample").run(PROBLEM, ctx)
    tree, reference = generated.tree, sampled.tree
    assert [tree.text(n.id) for n in tree.nodes()] == [reference.text(n.id) for n in reference.nodes()]
    assert [n.status for n in tree.nodes()] == [n.status for n in reference.nodes()]
    assert generated.answer == sampled.answer == "13"
    # One request per child: 4 at the root, then 2 under each of the 2 kept nodes, twice.
    assert [r.params.n for r in ctx.backend.requests] == [1] * 12
    assert {n.meta["author"] for n in tree.nodes() if n.parent is not None} == {"base"}
    assert generated.usage.model_calls == 12
    assert generated.usage.generated_tokens == tree.total_cost == sampled.usage.generated_tokens
    assert generated.usage.thinking_tokens == sampled.usage.thinking_tokens


async def test_dvts_takes_a_step_generator_too() -> None:
    ctx = context(one_call_per_child())
    dvts = DiverseVerifierTreeSearch(**FIELDS, step_generator=StepGenerator())
    result = await dvts.run(PROBLEM, ctx)
    assert result.answer == "13"
    assert all(r.params.n == 1 for r in ctx.backend.requests)


async def test_a_step_the_budget_refuses_ends_the_search_with_the_best_so_far() -> None:
    # Five calls: the root's four children, then one of the next step's four.
    ctx = context(one_call_per_child(), Budget(model_calls=5))
    result = await BeamSearch(**FIELDS, step_generator="sample").run(PROBLEM, ctx)
    assert result.budget_exhausted and result.exhausted_by == "model_calls"
    assert len(result.tree.nodes()) == 5
    assert result.usage.model_calls == 5
    assert result.details["steps"] == 2
    assert [c.text for c in result.candidates] == ["C\n\n", "A\n\nA1\n\n"]


async def test_the_answer_marker_ends_a_path_whoever_writes_its_steps() -> None:
    marked = {**FIELDS, "step": StepConfig(answer_marker="B")}
    sampled = await BeamSearch(**marked).run(PROBLEM, context(path_backend(STEPS)))
    generated = await BeamSearch(**marked, step_generator="sample").run(
        PROBLEM, context(one_call_per_child())
    )
    for result in (sampled, generated):
        (marker_step,) = [n for n in result.tree.nodes() if n.text == "B\n\n"]
        assert marker_step.status == "finished"
        assert "B\n\n" in [c.text for c in result.candidates]
