"""Depth-first Tree of Thoughts on the scripted backend with scripted scores: the best child is
followed first, children below the threshold are pruned, a dead branch is left for the
next-best sibling (backtracking), the search stops at the first accepted answer, never exceeds
its budget, and refuses bad input with the field named."""

from __future__ import annotations

import pytest
from search_helpers import PROBLEM, PathScores, context, path_backend

from ponder.budgets import Budget
from ponder.config import compose
from ponder.errors import BadRequestError
from ponder.search.expansion import StepConfig
from ponder.strategies import SamplingConfig, TreeOfThoughtsDFS, strategies

STEPS = {
    "": ["A\n\n", "B\n\n", "C\n\n"],
    "A\n\n": ["A1\n\n", "A2\n\n", "Answer: 5"],
    "A\n\nA2\n\n": ["Answer: 3", "Answer: 4", "A3\n\n"],
    "B\n\n": ["Answer: 12", "Answer: 13", "B1\n\n"],
}
SCORES = {
    "A\n\n": 0.9, "B\n\n": 0.6, "C\n\n": 0.2,
    "A\n\nA1\n\n": 0.55, "A\n\nA2\n\n": 0.7, "A\n\nAnswer: 5": 0.3,
    "A\n\nA2\n\nAnswer: 3": 0.1, "A\n\nA2\n\nAnswer: 4": 0.2, "A\n\nA2\n\nA3\n\n": 0.4,
    "B\n\nAnswer: 12": 0.8, "B\n\nAnswer: 13": 0.4, "B\n\nB1\n\n": 0.3,
}


def tot(**fields: object) -> TreeOfThoughtsDFS:
    options: dict[str, object] = {
        "step": StepConfig(max_step_tokens=16), "sampling": SamplingConfig(max_tokens=64),
        "verifier": PathScores(table=SCORES),
    }
    return TreeOfThoughtsDFS(**{**options, **fields})


def expanded_texts(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [result.tree.text(i) for i in result.details["expanded"]]


def _a1_dead_end(path: str, sample: int, call: int) -> str:
    if path in STEPS:
        return STEPS[path][sample]
    return f"{'xyz'[sample]}\n\n"  # unscored (A1's children): pruned, a dead end


async def test_goes_deep_along_the_best_child_and_backtracks_below_the_threshold() -> None:
    # root -> A .9 (B .6 waits, C .2 pruned) -> A2 .7 (A1 .55 waits, "5" .3 rejected)
    # -> "3", "4", A3 all below .5: dead -> back to A1 (its children unscored: dead)
    # -> back to B -> "12" .8: accepted, the search stops.
    ctx = context(path_backend(_a1_dead_end))
    result = await tot().run(PROBLEM, ctx)
    assert expanded_texts(result) == ["", "A\n\n", "A\n\nA2\n\n", "A\n\nA1\n\n", "B\n\n"]
    assert result.details["backtracks"] == 2  # A2 -> A1, A1 -> B
    assert result.answer == "12"
    assert [result.tree.text(i) for i in result.details["accepted"]] == ["B\n\nAnswer: 12"]
    c = next(n for n in result.tree.nodes() if n.text == "C\n\n")
    assert c.status == "pruned" and "threshold" in (c.score_reason or "")
    assert len(ctx.backend.requests) == 5  # one request per expanded state, n = k
    assert {r.params.n for r in ctx.backend.requests} == {3}


async def test_a_lower_threshold_accepts_the_first_answer_on_the_deepest_path() -> None:
    result = await tot(threshold=0.15).run(PROBLEM, context(path_backend(_a1_dead_end)))
    # "5" (.3) under A is accepted at the second expansion: A's children are scored together
    assert expanded_texts(result) == ["", "A\n\n"]
    assert result.answer == "5" and result.details["backtracks"] == 0


async def test_more_solutions_keep_searching_and_the_best_is_chosen() -> None:
    result = await tot(threshold=0.15, solutions=3).run(PROBLEM, context(path_backend(_a1_dead_end)))
    accepted = [result.tree.text(i) for i in result.details["accepted"]]
    # B's children are scored together: both its answers pass, one more than asked for
    assert accepted == ["A\n\nAnswer: 5", "A\n\nA2\n\nAnswer: 4", "B\n\nAnswer: 12", "B\n\nAnswer: 13"]
    assert result.answer == "12"  # argmax over the accepted paths


def _endless(path: str, sample: int, call: int) -> str:
    return f"{'abc'[sample]}\n\n"


@pytest.mark.parametrize(
    "budget",
    [Budget(generated_tokens=30), Budget(model_calls=2), Budget(verifier_calls=4),
     Budget(total_tokens=600)],
    ids=["generated", "model-calls", "verifier-calls", "total"],
)
async def test_never_exceeds_its_budget(budget: Budget) -> None:
    ctx = context(path_backend(_endless), budget)
    scores = PathScores(table={})
    strategy = tot(max_depth=50, max_expansions=100, verifier=_Half(table=scores.table))
    result = await strategy.run(PROBLEM, ctx)
    for limit in ("generated_tokens", "total_tokens", "model_calls", "verifier_calls"):
        if getattr(budget, limit) is not None:
            assert getattr(ctx.ledger.spent, limit) <= getattr(budget, limit), limit
    assert result.budget_exhausted
    assert result.usage.generated_tokens == result.tree.total_cost


class _Half(PathScores):
    """Every path scores .6 (above the default threshold)."""

    async def _score(self, problem, candidates, ctx):  # type: ignore[no-untyped-def]
        from ponder.verifiers.base import Score

        return [Score(0.6) for _ in candidates]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"threshold": 1.5}, "strategy.threshold: Input should be less than or equal to 1"),
        ({"k": 0}, "strategy.k: Input should be greater than or equal to 1"),
        ({"max_expansions": 0}, "strategy.max_expansions: Input should be greater than or equal to 1"),
    ],
    ids=["threshold-above-1", "k=0", "zero-expansions"],
)
def test_bad_input_is_refused_with_the_field_named(fields: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        strategies.build({"name": "tot_dfs", **fields})


def test_the_hydra_config_builds_the_class_defaults() -> None:
    assert strategies.build(compose(["strategy=tot_dfs"])["strategy"]) == TreeOfThoughtsDFS()
