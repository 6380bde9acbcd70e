"""MCTS on the scripted backend with scripted scores: PUCT and UCT pick the child their formula
says, backup adds the right values and visits, virtual loss spreads parallel simulations over
distinct leaves, finished leaves are never expanded, an unscorable node is never selected
again, the budget is never exceeded, and bad input is refused with the field named."""

from __future__ import annotations

import networkx as nx
import pytest
from search_helpers import PROBLEM, PathScores, context, path_backend

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget
from ponder.config import compose
from ponder.core.generation import GenerationRequest
from ponder.errors import BadRequestError
from ponder.search.expansion import StepConfig
from ponder.search.mcts import TreeStats, choose_child, priors
from ponder.search.tree import SearchTree
from ponder.strategies import MCTS, SamplingConfig, strategies

STEP = StepConfig(delimiters=("\n\n",), max_step_tokens=16)
SAMPLING = SamplingConfig(max_tokens=64)

STEPS = {
    "": ["A\n\n", "B\n\n"],
    "A\n\n": ["Answer: 12", "Answer: 11"],
    "B\n\n": ["Answer: 13", "C\n\n"],
    "B\n\nC\n\n": ["Answer: 7", "Answer: 8"],
}
SCORES = {
    "A\n\n": 0.8, "B\n\n": 0.4, "A\n\nAnswer: 12": 0.9, "A\n\nAnswer: 11": 0.3,
    "B\n\nAnswer: 13": 0.2, "B\n\nC\n\n": 0.5, "B\n\nC\n\nAnswer: 7": 0.6,
    "B\n\nC\n\nAnswer: 8": 0.1,
}


def mcts(**fields: object) -> MCTS:
    options: dict[str, object] = {
        "k": 2, "simulations": 4, "parallel": 1, "step": STEP, "sampling": SAMPLING,
        "prior": "uniform", "verifier": PathScores(table=SCORES),
    }
    return MCTS(**{**options, **fields})


def node_by_text(result, text: str):  # type: ignore[no-untyped-def]
    return next(n for n in result.tree.nodes() if result.tree.text(n.id) == text)


# -- the rules -----------------------------------------------------------------------------
def _family(visits: list[int], sums: list[float], priors_: list[float]) -> tuple[TreeStats, list]:
    tree = SearchTree([1])
    children = [tree.add_child(0, [i + 2], "x") for i in range(len(visits))]
    stats = TreeStats()
    stats[0].visits = sum(visits)
    for child, n, w, p in zip(children, visits, sums, priors_):
        stats.evaluated(child.id, 0.0, p)
        stats[child.id].visits, stats[child.id].value_sum = n, w
    return stats, children


# Children (visits, value sum, prior): A (6, 3.6, .2) Q .6; B (3, 1.5, .7) Q .5; C (1, .9, .1)
# Q .9; the parent has 10 visits.
#   PUCT Q + c P sqrt(10) / (1 + N): c=0: A .6, B .5, C .9 -> C; c=4: A .6+4(.090) = .96,
#   B .5+4(.553) = 2.71, C .9+4(.158) = 1.53 -> B.
#   UCT Q + c sqrt(ln 10 / N): c=1: A .6+.619, B .5+.876, C .9+1.517 -> C; c=0.1 -> C;
#   with C's value sum .3 (Q .3): c=1: A 1.219, B 1.376, C 1.817 -> C; c=0 -> A.
@pytest.mark.parametrize(
    ("formula", "c", "c_sum", "expected"),
    [("puct", 0.0, 0.9, 2), ("puct", 4.0, 0.9, 1), ("puct", 1.0, 0.3, 1),
     ("uct", 1.0, 0.9, 2), ("uct", 0.0, 0.3, 0), ("uct", 1.0, 0.3, 2)],
    ids=["puct-greedy", "puct-prior", "puct-balance", "uct", "uct-greedy", "uct-explores"],
)
def test_the_selection_rule_picks_the_child_its_formula_says(
    formula: str, c: float, c_sum: float, expected: int
) -> None:
    # PUCT c=1 with C's sum .3: A .690, B 1.053, C .3+.158 = .458 -> B.
    stats, children = _family([6, 3, 1], [3.6, 1.5, c_sum], [0.2, 0.7, 0.1])
    assert choose_child(stats, 0, children, formula, c) is children[expected]  # type: ignore[arg-type]


def test_virtual_loss_turns_the_next_descent_to_another_child() -> None:
    stats, children = _family([1, 1], [0.5, 0.5], [0.5, 0.5])
    assert choose_child(stats, 0, children, "puct", 1.0) is children[0]  # a tie: the older
    stats.claim([0, children[0].id])
    assert choose_child(stats, 0, children, "puct", 1.0) is children[1]
    stats.release([0, children[0].id])
    assert choose_child(stats, 0, children, "puct", 1.0) is children[0]


def test_backup_adds_values_and_visits_along_the_path() -> None:
    stats = TreeStats()
    stats.evaluated(1, 0.5, 1.0)
    stats.backup([0, 1], [0.2, 0.8])  # node 1's two children were evaluated .2 and .8
    assert (stats[0].visits, stats[0].value_sum) == (2, pytest.approx(1.0))
    assert (stats[1].visits, stats[1].value) == (3, pytest.approx(0.5))


def test_priors_are_normalised_over_siblings() -> None:
    tree = SearchTree([1])
    a = tree.add_child(0, [2, 3], "a", logprobs=[-1.0, -1.0])
    b = tree.add_child(0, [4], "b", logprobs=[-2.0])
    assert priors([a, b], "mean_logprob") == pytest.approx([1 / (1 + 2.718281828 ** -1), 0.268941], rel=1e-5)
    assert priors([a, b], "sum_logprob") == pytest.approx([0.5, 0.5])  # both sum to -2
    a.score, b.score = 0.3, 0.1
    assert priors([a, b], "score") == pytest.approx([0.75, 0.25])
    b.logprobs = None
    assert priors([a, b], "mean_logprob") == [0.5, 0.5]  # no signal for one: uniform


# -- the search ------------------------------------------------------------------------------
async def test_simulations_follow_puct_and_the_most_visited_path_answers() -> None:
    # sim 1 expands the root: A .8, B .4. sim 2: PUCT (uniform priors, c=1, root N=2):
    # A .8+.5*1.414/2 = 1.15, B .4+.354 = .75 -> expand A: "12" .9, "11" .3 (A: N 3, Q .667).
    # sim 3: root N 4: A .667+.5*2/4 = .917, B .4+.5*2/2 = .9 -> A again, its children are
    # finished: "12" (.9+.5*1.73/2 = 1.33) beats "11" -> backs up .9 (no generation).
    # sim 4: root N 5: A (N 4, Q .725) .725+.5*2.236/5 = .949, B .4+.559 = .959 -> expand B.
    ctx = context(path_backend(STEPS))
    result = await mcts().run(PROBLEM, ctx)
    tree = result.tree
    prompts = [ctx.decode(r.prompt_token_ids[len(tree.root.token_ids):])
               for r in ctx.backend.requests]
    assert prompts == ["", "A\n\n", "B\n\n"]  # the finished leaf was never expanded
    a, b = node_by_text(result, "A\n\n"), node_by_text(result, "B\n\n")
    assert (a.meta["visits"], a.meta["value"]) == (4, pytest.approx((0.8 + 0.9 + 0.3 + 0.9) / 4))
    assert (b.meta["visits"], b.meta["value"]) == (3, pytest.approx((0.4 + 0.2 + 0.5) / 3))
    assert tree.root.meta["visits"] == 7
    assert result.details["simulations"] == 4 and result.details["waves"] == [1, 1, 1]
    assert result.answer == "12"  # root -> A (4 visits) -> "12" (2 visits)


async def test_every_node_holds_the_mean_of_the_evaluations_in_its_subtree() -> None:
    # An inner node's visits are its own evaluation plus its children's visits, and its value
    # sum their evaluations (a finished leaf's re-visits are in its own count).
    result = await mcts(simulations=6, parallel=2).run(PROBLEM, context(path_backend(STEPS)))
    tree, checked = result.tree, 0
    for node in tree:
        kids = [c for c in tree.children(node.id) if "visits" in c.meta]
        if "visits" not in node.meta or not kids:
            continue
        own = 0.0 if node.is_root else node.meta["evaluation"]
        assert node.meta["visits"] == (0 if node.is_root else 1) + sum(c.meta["visits"] for c in kids)
        total = own + sum(c.meta["value"] * c.meta["visits"] for c in kids)
        assert node.meta["value"] * node.meta["visits"] == pytest.approx(total)
        checked += 1
    assert checked >= 3  # the root, A and B


def _wide(path: str, sample: int, call: int) -> str:
    """Every state has four distinct next steps."""
    return f"{'abcd'[sample]}{len(path)}\n\n"


async def test_virtual_loss_spreads_parallel_simulations_over_distinct_leaves() -> None:
    ctx = context(path_backend(_wide))
    strategy = mcts(k=4, simulations=9, parallel=4, verifier=PathScores(table={}))
    strategy = strategy.model_copy(update={"verifier": _Flat()})
    result = await strategy.run(PROBLEM, ctx)
    assert result.details["waves"] == [1, 4, 4]  # the root alone, then four leaves at once
    root_ids = len(result.tree.root.token_ids)
    second = [tuple(r.prompt_token_ids[root_ids:]) for r in ctx.backend.requests[1:5]]
    assert len(set(second)) == 4  # four different leaves, one request each
    assert [r.params.n for r in ctx.backend.requests] == [4] * 9


class _Flat(PathScores):
    """Every path scores .5: only virtual loss tells the simulations apart."""

    table: dict[str, float | None] = {}

    async def _score(self, problem, candidates, ctx):  # type: ignore[no-untyped-def]
        from ponder.verifiers.base import Score

        return [Score(0.5) for _ in candidates]


async def test_a_node_the_scorer_cannot_score_is_pruned_and_never_selected() -> None:
    scores = {k: v for k, v in SCORES.items() if k != "A\n\n"}  # A (the best) is unscorable
    ctx = context(path_backend(STEPS))
    result = await mcts(verifier=PathScores(table=scores)).run(PROBLEM, ctx)
    a = node_by_text(result, "A\n\n")
    assert a.status == "pruned" and "visits" not in a.meta
    prompts = [ctx.decode(r.prompt_token_ids[len(result.tree.root.token_ids):])
               for r in ctx.backend.requests]
    assert "A\n\n" not in prompts and prompts[:2] == ["", "B\n\n"]
    assert result.answer in {"7", "8", "13"}


async def test_a_search_whose_every_path_ends_stops_generating() -> None:
    steps = {"": ["Answer: 12", "Answer: 13"]}
    ctx = context(path_backend(steps))
    scores = {"Answer: 12": 0.9, "Answer: 13": 0.2}
    result = await mcts(simulations=5, verifier=PathScores(table=scores)).run(PROBLEM, ctx)
    assert len(ctx.backend.requests) == 1  # finished leaves are backed up, never expanded
    assert result.details["simulations"] == 5
    best = node_by_text(result, "Answer: 12")
    assert best.meta["visits"] > node_by_text(result, "Answer: 13").meta["visits"]
    assert result.answer == "12"


async def test_rollouts_mix_into_the_value_by_lambda() -> None:
    grades = {"A\n\nAnswer: 12": 1.0, "B\n\nAnswer: 13": 0.0}
    steps = {**STEPS, "A\n\n": ["Answer: 12"], "B\n\n": ["Answer: 13"]}
    ctx = context(path_backend(steps))
    strategy = mcts(simulations=1, rollout_weight=0.25, rollout_verifier=PathScores(table=grades))
    result = await strategy.run(PROBLEM, ctx)
    a, b = node_by_text(result, "A\n\n"), node_by_text(result, "B\n\n")
    assert a.meta["rollout_grade"] == 1.0 and a.score == 0.8  # the node keeps its step score
    assert a.meta["evaluation"] == pytest.approx(0.75 * 0.8 + 0.25 * 1.0)
    assert b.meta["evaluation"] == pytest.approx(0.75 * 0.4 + 0.25 * 0.0)
    assert result.usage.generated_tokens == result.tree.total_cost  # roll-outs are charged


async def test_a_rollout_that_never_finishes_is_cut_by_the_chain_limit() -> None:
    ctx = context(path_backend(lambda path, sample, call: f"s{sample}\n\n"))
    strategy = mcts(
        simulations=2, max_depth=50, rollout_weight=1.0, rollout_verifier=_Flat(),
        sampling=SamplingConfig(max_tokens=20),
    )
    result = await strategy.run(PROBLEM, ctx)
    assert all(n.cost <= 20 for n in result.tree.nodes())
    assert max(ctx.backend.requests[-1].params.max_tokens, 0) <= 20
    assert result.details["simulations"] == 2


@pytest.mark.parametrize(
    "budget",
    [Budget(generated_tokens=40), Budget(total_tokens=900), Budget(model_calls=3),
     Budget(verifier_calls=5)],
    ids=["generated", "total", "model-calls", "verifier-calls"],
)
@pytest.mark.parametrize("parallel", [1, 4])
async def test_never_exceeds_its_budget(budget: Budget, parallel: int) -> None:
    ctx = context(path_backend(_wide), budget)
    result = await mcts(k=2, simulations=40, parallel=parallel, max_depth=40, verifier=_Flat()).run(
        PROBLEM, ctx
    )
    for limit in ("generated_tokens", "total_tokens", "model_calls", "verifier_calls"):
        if getattr(budget, limit) is not None:
            assert getattr(ctx.ledger.spent, limit) <= getattr(budget, limit), limit
    assert result.budget_exhausted and result.exhausted_by is not None
    assert result.usage.generated_tokens == result.tree.total_cost


async def test_the_clock_aborts_work_in_flight_and_counts_it_cancelled() -> None:
    def slow(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        return ScriptedSample("abcdefgh\n\n", delay=0.01)

    ctx = context(ScriptedBackend(slow), Budget(seconds=0.15))
    result = await mcts(simulations=20, parallel=4, max_depth=40, verifier=_Flat()).run(PROBLEM, ctx)
    assert result.budget_exhausted and result.exhausted_by == "seconds"
    assert result.usage.cancelled_tokens > 0


async def test_the_tree_with_its_statistics_exports_to_json_and_graphml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = await mcts().run(PROBLEM, context(path_backend(STEPS)))
    tree = result.tree
    assert SearchTree.from_json(tree.to_json()) == tree
    tree.write_graphml(tmp_path / "tree.graphml")
    again = SearchTree.read_graphml(tmp_path / "tree.graphml")
    assert again == tree and again.root.meta["visits"] == 7
    plain = nx.read_graphml(tmp_path / "tree.graphml", node_type=int)
    assert plain.nodes[0]["meta.visits"] == 7  # numbers a graph tool can read directly
    assert {row["id"] for row in result.details["stats"]} >= {0, 1, 2}


@pytest.mark.parametrize(("selection", "answer"), [("argmax", "12"), ("weighted", "12"), ("visits", "12")])
async def test_the_final_answer_rules(selection: str, answer: str) -> None:
    result = await mcts(selection=selection, simulations=4).run(PROBLEM, context(path_backend(STEPS)))
    assert result.answer == answer


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"c_puct": -1}, "strategy.c_puct: Input should be greater than or equal to 0"),
        ({"simulations": 0}, "strategy.simulations: Input should be greater than or equal to 1"),
        ({"simulations": 4, "parallel": 8}, "parallel must be at most simulations"),
        ({"rollout_weight": 1.5}, "strategy.rollout_weight: Input should be less than or equal to 1"),
        ({"selection_rule": "ucb"}, "strategy.selection_rule: Input should be 'puct' or 'uct'"),
        ({"prior": "score", "rollout_weight": 1.0}, "prior 'score' needs step scores"),
    ],
    ids=["negative-c", "zero-simulations", "parallel-above-simulations", "lambda-above-1",
         "unknown-rule", "score-prior-without-scores"],
)
def test_bad_input_is_refused_with_the_field_named(fields: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        strategies.build({"name": "mcts", **fields})


def test_the_hydra_config_builds_the_class_defaults() -> None:
    assert strategies.build(compose(["strategy=mcts"])["strategy"]) == MCTS()


def test_roll_outs_may_be_graded_by_an_outcome_verifier_but_steps_may_not() -> None:
    built = strategies.build({"name": "mcts", "rollout_verifier": "reference_answer"})
    assert built.grader.scores_partial_paths is False
    with pytest.raises(BadRequestError, match="strategy.verifier: reference_answer scores only"):
        strategies.build({"name": "mcts", "verifier": "reference_answer"})


def test_it_composes_as_the_sampler_of_self_consistency() -> None:
    sc = strategies.build({"name": "self_consistency", "n": 2, "sampler": {"name": "mcts", "simulations": 2, "parallel": 2}})
    assert isinstance(sc.sampler, MCTS) and sc.sampler.parallel == 2


async def test_self_consistency_votes_over_mcts_runs() -> None:
    sampler = mcts(simulations=4, parallel=2)
    sc = strategies.build({"name": "self_consistency", "n": 2, "sampler": sampler})
    ctx = context(path_backend(STEPS))
    result = await sc.run(PROBLEM, ctx)
    assert [c.answer for c in result.candidates] == ["12", "12"] and result.answer == "12"
    assert result.usage.model_calls == len(ctx.backend.requests)
