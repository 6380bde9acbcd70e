"""Beam search on the scripted backend with table scores: which nodes survive each step,
what is submitted, early stops, look-ahead, duplicates, failing scorers, budgets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from search_helpers import PROBLEM, SCORES, STEPS, PathScores, context, path_backend

from ponder.budgets import Budget
from ponder.errors import BadRequestError
from ponder.search.expansion import StepConfig
from ponder.search.tree import SearchTree
from ponder.strategies import BeamSearch, SamplingConfig, strategies

SAMPLING = SamplingConfig(max_tokens=64)


def beam(**overrides: object) -> BeamSearch:
    fields = {"n": 4, "beam_width": 2, "max_steps": 3, "sampling": SAMPLING,
              "verifier": PathScores(table=SCORES), **overrides}
    return BeamSearch.model_validate(fields)


def texts(tree: SearchTree, status: str) -> list[str]:
    return [tree.text(n.id) for n in tree.nodes(status)]  # type: ignore[arg-type]


async def test_each_step_keeps_the_best_n_over_m_and_expands_each_m_times() -> None:
    ctx = context(path_backend(STEPS))
    result = await beam(selection="argmax").run(PROBLEM, ctx)
    tree = result.tree
    assert texts(tree, "pruned") == ["B\n\n", "D\n\n", "A\n\nA1\n\n", "C\n\nC2\n\n"]
    requests = ctx.backend.requests
    assert [r.params.n for r in requests] == [4, 2, 2, 2, 2]
    # Kept nodes are expanded best first, each from its own prefix of ids.
    kept = ["A\n\n", "C\n\n", "C\n\nC1\n\n", "A\n\nA2\n\n"]
    by_text = {tree.text(n.id): n.id for n in tree.nodes()}
    prompts = [list(r.prompt_token_ids) for r in requests[1:]]
    assert prompts == [tree.prefix(by_text[t]) for t in kept]
    assert requests[0].params.stop == ("\n\n",)
    assert requests[-1].params.stop == ()  # the last step runs to the end
    assert [c.text for c in result.candidates] == [
        "C\n\nC1\n\nAnswer: 12", "C\n\nC1\n\nAnswer: 13",
        "A\n\nA2\n\nAnswer: 12", "A\n\nA2\n\nAnswer: 11",
    ]
    assert result.answer == "13" and result.details["best_score"] == 0.95
    assert result.details["steps"] == 3 and result.details["nodes_expanded"] == 5
    assert result.details["pruned"] == 4 and result.details["finished"] == 4
    assert result.usage.generated_tokens == tree.total_cost


@pytest.mark.parametrize(
    ("selection", "answer"), [("argmax", "13"), ("weighted", "12"), ("majority", "12")]
)
async def test_selection_rules(selection: str, answer: str) -> None:
    result = await beam(selection=selection).run(PROBLEM, context(path_backend(STEPS)))
    assert result.answer == answer


async def test_search_stops_once_n_paths_have_ended() -> None:
    steps = {"": ["Answer: 1", "x\n\n", "Answer: 2", "Answer: 3"],
             "x\n\n": ["Answer: 4", "Answer: 5"]}
    scores = {"Answer: 1": 0.5, "x\n\n": 0.5, "Answer: 2": 0.5, "Answer: 3": 0.5,
              "x\n\nAnswer: 4": 0.9, "x\n\nAnswer: 5": 0.1}
    ctx = context(path_backend(steps))
    result = await beam(max_steps=10, verifier=PathScores(table=scores)).run(PROBLEM, ctx)
    assert len(ctx.backend.requests) == 2  # 3 ended at step 1, 2 more at step 2: done
    assert len(result.candidates) == 5 and result.details["steps"] == 2


async def test_lookahead_scores_nodes_on_their_greedy_rollouts() -> None:
    # Sample 0 from B is its greedy roll-out and, at the last step, a path that ends there.
    steps = {"": ["A\n\n", "B\n\n"], "A\n\n": ["bad\n\n"],
             "B\n\n": ["good\n\n", "good\n\nAnswer: 7"]}
    scores = {"A\n\nbad\n\n": 0.1, "B\n\ngood\n\n": 0.9, "B\n\ngood\n\nAnswer: 7": 0.8}
    ctx = context(path_backend(steps))
    search = beam(n=2, max_steps=2, lookahead=1, verifier=PathScores(table=scores))
    result = await search.run(PROBLEM, ctx)
    tree = result.tree
    assert texts(tree, "pruned") == ["A\n\n"]  # ranked by its roll-out, not its own step
    assert [r.params.temperature for r in ctx.backend.requests[1:3]] == [0.0, 0.0]
    assert len(tree) == 5  # roll-outs add no nodes...
    assert tree.nodes()[0].cost == 3 + 5  # ...but their tokens are the node's cost
    assert result.answer == "7"
    assert result.usage.generated_tokens == tree.total_cost


async def test_duplicate_steps_are_pruned_before_scoring() -> None:
    steps = {"": ["A\n\n", "A\n\n", "B\n\n", "C\n\n"], "A\n\n": ["Answer: 1"] * 2,
             "C\n\n": ["Answer: 2"] * 2}
    scores = {"A\n\n": 0.9, "B\n\n": 0.1, "C\n\n": 0.5,
              "A\n\nAnswer: 1": 0.5, "C\n\nAnswer: 2": 0.5}
    search = beam(max_steps=2, verifier=PathScores(table=scores))
    result = await search.run(PROBLEM, context(path_backend(steps)))
    duplicate = result.tree.nodes()[1]
    assert duplicate.status == "pruned" and duplicate.score is None
    assert duplicate.score_reason == "repeats node 1"
    kept = [result.tree.text(r) for r in (n.parent for n in result.tree.nodes("finished"))]
    assert kept == ["A\n\n", "A\n\n", "C\n\n", "C\n\n"]  # the copy did not take a beam slot


async def test_a_node_the_scorer_fails_on_is_pruned_and_the_search_goes_on() -> None:
    scores = {k: v for k, v in SCORES.items() if k != "A\n\n"}  # A: Score(None)
    scorer = PathScores(table=scores, raise_on=("D\n\n",))  # D: the batch call raises
    result = await beam(verifier=scorer).run(PROBLEM, context(path_backend(_without_a())))
    tree = result.tree
    a, b, c, d = tree.nodes()[:4]
    assert (a.status, a.score) == ("pruned", None)
    assert (d.status, d.score) == ("pruned", None) and "the scorer crashed" in d.score_reason
    assert (b.score, c.score) == (0.2, 0.7)  # scored alone once the batch failed
    assert result.answer is not None and not result.budget_exhausted


def _without_a() -> dict:
    """STEPS for when B is kept in A's place (A and D are unscorable, and so are B's
    children, so C's two children are the two best of step 2)."""
    return {**STEPS, "B\n\n": ["B1\n\n", "B2\n\n"], "C\n\nC2\n\n": ["Answer: 9"] * 2}


async def test_a_budget_that_runs_out_returns_the_best_path_so_far() -> None:
    ctx = context(path_backend(STEPS), Budget(generated_tokens=4 * 8 + 2 * 8))
    result = await beam(step=StepConfig(max_step_tokens=8), selection="argmax").run(PROBLEM, ctx)
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert result.usage.generated_tokens <= 48
    # Step 3 (to the end: 2 x 57 tokens) does not fit: the two kept paths are the candidates.
    assert [c.text for c in result.candidates] == ["A\n\nA2\n\n", "C\n\nC1\n\n"]
    assert [c.finish_reason for c in result.candidates] == [None, None]  # cut short, still open
    assert result.candidates[result.selected_index].score == 0.9
    assert len(ctx.backend.requests) == 3


async def test_a_delimiter_that_never_appears_gives_steps_of_the_step_limit() -> None:
    text = "Answer: 12 because six twos"
    ctx = context(path_backend(lambda path, i, call: text[len(path):]))
    scores = PathScores(table={text[:end]: 0.5 for end in (10, 20, len(text))})
    step = StepConfig(delimiters=("###",), max_step_tokens=10)
    result = await beam(n=2, step=step, max_steps=5, verifier=scores).run(PROBLEM, ctx)
    path = result.tree.path(result.details["candidate_nodes"][0])
    assert [node.text for node in path] == ["Answer: 12", " because s", "ix twos"]
    assert [r.params.max_tokens for r in ctx.backend.requests] == [10, 10, 10]
    assert result.answer == "12" and result.details["steps"] == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": 8, "beam_width": 3}, "beam_width must divide n"),
        ({"max_steps": 0}, "max_steps"),
        ({"beam_width": 0}, "beam_width"),
        ({"step": {"max_step_tokens": 0}}, "max_step_tokens"),
    ],
    ids=["width-not-dividing-n", "zero-steps", "zero-width", "zero-step-tokens"],
)
def test_bad_configs_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BeamSearch.model_validate({"verifier": PathScores(table={}), **fields})
    with pytest.raises(BadRequestError, match=message):
        strategies.build({"name": "beam", "verifier": "self_certainty", **fields})


async def test_the_result_dict_carries_the_tree() -> None:
    result = await beam().run(PROBLEM, context(path_backend(STEPS)))
    exported = result.to_dict()["tree"]
    assert SearchTree.from_dict(exported) == result.tree
    assert exported["nodes"][0]["token_ids"] == result.tree.prefix(0)
