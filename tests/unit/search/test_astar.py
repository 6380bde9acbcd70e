"""A*-decoding on the scripted backend with scripted step scores: states expanded in order of
hand-computed f = g + h, the search stops at the first finished state that is best by
priority, never exceeds its budget (tokens, calls, verifier calls), and refuses bad input."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from search_helpers import PROBLEM, context, path_backend

from ponder.budgets import Budget
from ponder.config import compose
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.strategies import AStar, SamplingConfig, strategies
from ponder.verifiers.base import Score
from ponder.verifiers.process import ProcessVerifier

STEP = StepConfig(delimiters=("\n\n",), max_step_tokens=16)
SAMPLING = SamplingConfig(max_tokens=64)

# Every path's steps and each step's score r (a process verifier, aggregation "last").
STEPS = {
    "": ["A\n\n", "B\n\n"],
    "B\n\n": ["C\n\n", "D\n\n"],
    "A\n\n": ["E\n\n", "Answer: 13"],
    "A\n\nE\n\n": ["Answer: 12", "F\n\n"],
    "B\n\nC\n\n": ["Answer: 7", "G\n\n"],
}
SCORES = {
    "A": 0.6, "B": 0.8, "C": 0.65, "D": 0.3, "E": 0.9, "F": 0.1, "G": 0.2,
    "Answer: 13": 0.5, "Answer: 12": 0.95, "Answer: 7": 0.7,
}


class StepTable(ProcessVerifier):
    """Scores each step by its text from a table (a step missing from it is unscored)."""

    table: dict[str, float]

    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: Run
    ) -> list[list[float | None] | Score]:
        return [[self.table.get(step) for step in steps] for steps in paths]


def astar(**fields: object) -> AStar:
    options: dict[str, object] = {
        "k": 2, "step": STEP, "sampling": SAMPLING, "verifier": StepTable(table=SCORES)
    }
    return AStar(**{**options, **fields})


def scripted(steps: object = STEPS, budget: Budget | None = None) -> Run:
    return context(path_backend(steps), budget)  # type: ignore[arg-type]


def texts(result, node_ids: Sequence[int]) -> list[str]:  # type: ignore[no-untyped-def]
    return [result.tree.text(i) for i in node_ids]


async def test_expands_states_in_order_of_f_and_stops_at_the_best_finished_one() -> None:
    # f = g + h, h = 1 - r, g = the path's summed (1 - r):
    #   A .4+.4 = .8   B .2+.2 = .4            -> expand B (.4)
    #   C (.2+.35)+.35 = .9   D (.2+.7)+.7 = 1.6 -> expand A (.8), not C (.9)
    #   E (.4+.1)+.1 = .6   "13" (.4+.5)+.5 = 1.4 (finished, not best: the search goes on)
    #                                            -> expand E (.6)
    #   "12" (.5+.05)+.05 = .6 (finished)   F (.5+.9)+.9 = 2.3
    #   -> "12" is the lowest f and finished: the goal; C, D and F are never expanded.
    ctx = scripted()
    result = await astar().run(PROBLEM, ctx)
    details = result.details
    assert texts(result, details["expanded"]) == ["", "B\n\n", "A\n\n", "A\n\nE\n\n"]
    assert details["expanded_f"] == pytest.approx([0.0, 0.4, 0.8, 0.6])
    assert result.answer == "12"
    assert result.tree.text(details["goal"]) == "A\n\nE\n\nAnswer: 12"
    assert details["selected_f"] == pytest.approx(0.6)
    assert not result.budget_exhausted
    assert len(ctx.backend.requests) == 4  # one request per expansion, none after the goal
    assert [r.params.n for r in ctx.backend.requests] == [2, 2, 2, 2]
    # both finished paths are candidates; the one chosen is the goal
    assert sorted(c.answer for c in result.candidates) == ["12", "13"]
    assert result.best.score == pytest.approx(0.95)
    assert result.best.step_scores == pytest.approx((0.6, 0.9, 0.95))


async def test_without_path_cost_it_is_greedy_best_first_and_finds_another_goal() -> None:
    # h alone: A .4, B .2 -> B; C .35, D .7 -> C (.35 < A's .4); "7" .3 finished -> goal.
    result = await astar(cost_weight=0.0).run(PROBLEM, scripted())
    assert texts(result, result.details["expanded"]) == ["", "B\n\n", "B\n\nC\n\n"]
    assert result.details["expanded_f"] == pytest.approx([0.0, 0.2, 0.35])
    assert result.answer == "7"


async def test_width_expands_the_best_states_together_and_stops_at_a_finished_one() -> None:
    # round 1: root. round 2: B (.4) and A (.8) at once. round 3: E (.6) and C (.9) at once;
    # the next state, "13" (1.4), is finished: the round stops there rather than pass it.
    # Then "12" (.6) tops the queue: the goal ("7": (.55+.3)+.3 = 1.15).
    ctx = scripted()
    result = await astar(width=3).run(PROBLEM, ctx)
    assert texts(result, result.details["expanded"]) == [
        "", "B\n\n", "A\n\n", "A\n\nE\n\n", "B\n\nC\n\n"
    ]
    assert result.details["expanded_f"] == pytest.approx([0.0, 0.4, 0.8, 0.6, 0.9])
    prompt = len(result.tree.root.token_ids)
    prompts = [ctx.backend.decode(r.prompt_token_ids[prompt:]) for r in ctx.backend.requests]
    assert prompts == ["", "B\n\n", "A\n\n", "A\n\nE\n\n", "B\n\nC\n\n"]
    assert result.answer == "12"


async def test_usage_adds_up_and_thinking_is_the_text_before_the_answer() -> None:
    ctx = scripted()
    result = await astar().run(PROBLEM, ctx)
    usage, tree = result.usage, result.tree
    assert usage.generated_tokens == tree.total_cost == 6 * 3 + 2 * 10  # 6 steps, 2 answers
    assert usage.model_calls == result.details["expansions"] == 4
    assert usage.verifier_calls == result.details["nodes"] == 8  # every child scored once
    assert usage.thinking_tokens == 6 * 3  # "Answer: .." is answer, every other step thinking
    assert result.best.thinking_tokens == len("A\n\nE\n\n")
    assert usage.cached_prompt_tokens > 0  # children continue their parent's ids


async def test_a_state_the_scorer_cannot_score_is_pruned_and_never_expanded() -> None:
    scores = {k: v for k, v in SCORES.items() if k != "B"}  # B (the best) cannot be scored
    result = await astar(verifier=StepTable(table=scores)).run(PROBLEM, scripted())
    b = next(n for n in result.tree.nodes() if n.text == "B\n\n")
    assert b.status == "pruned" and b.score is None
    assert b.id not in result.details["expanded"]
    assert texts(result, result.details["expanded"]) == ["", "A\n\n", "A\n\nE\n\n"]
    assert result.answer == "12"


async def test_a_child_repeating_its_sibling_is_pruned_before_scoring() -> None:
    steps = {"": ["A\n\n", "A\n\n"], "A\n\n": ["Answer: 12", "Answer: 12"]}
    ctx = scripted(steps)
    result = await astar().run(PROBLEM, ctx)
    first, second = result.tree.nodes()[:2]
    assert second.status == "pruned" and second.score_reason == f"repeats node {first.id}"
    assert result.details["expanded"] == [0, first.id]  # the repeat is never expanded
    assert result.usage.verifier_calls == 2  # "A" once, "A / Answer: 12" once
    assert result.answer == "12"


def _endless(path: str, sample: int, call: int) -> str:
    """Every state has two more steps, the second child always the better one."""
    return "ab\n\n" if sample == 0 else "cd\n\n"


ENDLESS_SCORES = {"ab": 0.4, "cd": 0.7}


@pytest.mark.parametrize(
    "budget",
    [
        Budget(generated_tokens=50),
        Budget(total_tokens=900),
        Budget(model_calls=3),
        Budget(verifier_calls=5),
        Budget(generated_tokens=37, verifier_calls=7),
    ],
    ids=["generated", "total", "model-calls", "verifier-calls", "tokens-and-verifier"],
)
@pytest.mark.parametrize("width", [1, 3], ids=["width-1", "width-3"])
async def test_never_exceeds_its_budget(budget: Budget, width: int) -> None:
    ctx = scripted(_endless, budget)
    strategy = astar(width=width, max_steps=50, verifier=StepTable(table=ENDLESS_SCORES))
    result = await strategy.run(PROBLEM, ctx)
    spent = ctx.ledger.spent
    for limit in ("generated_tokens", "total_tokens", "model_calls", "verifier_calls"):
        if getattr(budget, limit) is not None:
            assert getattr(spent, limit) <= getattr(budget, limit), limit
    assert result.budget_exhausted
    assert result.exhausted_by in {"generated_tokens", "total_tokens", "model_calls", "verifier_calls"}
    assert result.usage.generated_tokens == result.tree.total_cost
    # no path finished: the best state not expanded (lowest f) is the answer so far
    assert len(result.candidates) == 1 and result.selected_index == 0
    waiting = [n for n in result.tree.nodes("open") if n.id not in result.details["expanded"]]
    ranked = min(waiting, key=lambda n: (n.meta["f"], n.id))
    assert result.candidates[0].text == result.tree.text(ranked.id)


async def test_verifier_calls_left_cap_the_children_asked_for() -> None:
    ctx = scripted(_endless, Budget(verifier_calls=5))
    result = await astar(max_steps=50, verifier=StepTable(table=ENDLESS_SCORES)).run(PROBLEM, ctx)
    assert [r.params.n for r in ctx.backend.requests] == [2, 2, 1]  # 5 children, 5 calls
    assert result.usage.verifier_calls == 5
    assert result.exhausted_by == "verifier_calls"
    assert all(n.score is not None for n in result.tree.nodes())  # no child left unscored


async def test_the_last_step_runs_to_the_end_of_the_answer() -> None:
    steps = {"": ["x\n\nrest", "y\n\n"], "x\n\n": ["z\n\nAnswer: 1", "w\n\nAnswer: 2"]}
    ctx = scripted(steps)
    result = await astar(max_steps=2, verifier=StepTable(table={"x": 0.9, "y": 0.1, "z": 0.5, "w": 0.6})).run(PROBLEM, ctx)
    last = ctx.backend.requests[-1]
    assert last.params.stop == () and last.params.max_tokens == SAMPLING.max_tokens - 3
    depth_two = [n for n in result.tree.nodes() if n.depth == 2]
    assert [n.status for n in depth_two] == ["finished", "finished"]
    assert [n.text for n in depth_two] == ["z\n\nAnswer: 1", "w\n\nAnswer: 2"]
    # scored as three steps each; "last" is the answer line, which the table does not know,
    # so the aggregate falls back to the steps it does know: z .5 and w .6
    assert result.answer == "2"


async def test_a_budget_too_small_for_one_step_returns_no_answer() -> None:
    ctx = scripted(budget=Budget(generated_tokens=10))  # one request reserves 2 x 16
    result = await astar().run(PROBLEM, ctx)
    assert result.candidates == [] and result.answer is None
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert ctx.backend.requests == [] and ctx.ledger.spent.generated_tokens == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"k": 0}, "strategy.k: Input should be greater than or equal to 1"),
        ({"max_steps": 0}, "strategy.max_steps: Input should be greater than or equal to 1"),
        ({"width": 0}, "strategy.width: Input should be greater than or equal to 1"),
        ({"cost_weight": -1}, "strategy.cost_weight: Input should be greater than or equal to 0"),
        ({"heuristic_weight": float("nan")}, "strategy.heuristic_weight: Input should be a finite number"),
        ({"cost_weight": 0, "heuristic_weight": 0}, "cost_weight and heuristic_weight must not both be 0"),
        ({"verifier": "no_such_verifier"}, "unknown verifier 'no_such_verifier'"),
    ],
    ids=["k=0", "zero-steps", "width=0", "negative-weight", "nan-weight", "both-weights-zero", "bad-verifier"],
)
def test_bad_input_is_refused_with_the_field_named(fields: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        strategies.build({"name": "astar", **fields})


def test_the_registry_builds_it_with_a_process_verifier_by_default() -> None:
    strategy = strategies.build("astar")
    assert isinstance(strategy, AStar)
    assert isinstance(strategy.verifier, ProcessVerifier)


def test_the_hydra_config_builds_the_class_defaults() -> None:
    assert strategies.build(compose(["strategy=astar"])["strategy"]) == AStar()
