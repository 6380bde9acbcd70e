"""DVTS on the scripted backend: subtrees that never compete, one survivor per subtree,
subtrees that end on their own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from search_helpers import PROBLEM, PathScores, context, path_backend

from ponder.strategies import BeamSearch, DiverseVerifierTreeSearch, SamplingConfig

FIRST = {0: ["A\n\n", "B\n\n"], 1: ["C\n\n", "D\n\n"]}
"""The root's children per request: subtree 0 gets A and B, subtree 1 gets C and D."""
LATER = {
    "A\n\n": ["A1\n\n", "Answer: 12"],
    "C\n\n": ["C1\n\n", "C2\n\n"],
    "C\n\nC2\n\n": ["Answer: 12", "Answer: 14"],
    "A\n\nA1\n\n": ["Answer: 99", "Answer: 98"],
}
SCORES = {
    "A\n\n": 0.9, "B\n\n": 0.8, "C\n\n": 0.3, "D\n\n": 0.1,
    "A\n\nA1\n\n": 0.2, "A\n\nAnswer: 12": 0.7,
    "C\n\nC1\n\n": 0.1, "C\n\nC2\n\n": 0.2,
    "C\n\nC2\n\nAnswer: 12": 0.6, "C\n\nC2\n\nAnswer: 14": 0.5,
}


def steps(path: str, sample: int, call: int) -> str:
    return FIRST[call][sample] if path == "" else LATER[path][sample]


def fields(**overrides: object) -> dict:
    return {"n": 4, "beam_width": 2, "max_steps": 3, "sampling": SamplingConfig(max_tokens=64),
            "verifier": PathScores(table=SCORES), **overrides}


async def test_each_subtree_keeps_its_own_best_child() -> None:
    ctx = context(path_backend(steps))
    result = await DiverseVerifierTreeSearch.model_validate(fields()).run(PROBLEM, ctx)
    tree = result.tree
    requests = ctx.backend.requests
    assert [r.params.n for r in requests] == [2, 2, 2, 2, 2]
    assert [list(r.prompt_token_ids) for r in requests[:2]] == [tree.prefix(0)] * 2
    a, b, c, d = tree.children(0)
    # C (0.3) survives although B (0.8) scored higher: B only competes inside subtree 0.
    assert [n.status for n in (a, b, c, d)] == ["open", "pruned", "open", "pruned"]
    assert [n.meta["subtree"] for n in (a, b, c, d)] == [0, 0, 1, 1]
    second = [list(r.prompt_token_ids) for r in requests[2:4]]
    assert second == [tree.prefix(a.id), tree.prefix(c.id)]
    # Subtree 0's best child ended its answer at step 2, so only subtree 1 goes on.
    c2 = next(n for n in tree.children(c.id) if n.text == "C2\n\n")
    assert [list(r.prompt_token_ids) for r in requests[4:]] == [tree.prefix(c2.id)]
    assert all(n.meta["subtree"] == 1 for n in tree.subtree(c.id))
    assert {tree.text(n.id) for n in tree.nodes("finished")} == {
        "A\n\nAnswer: 12", "C\n\nC2\n\nAnswer: 12", "C\n\nC2\n\nAnswer: 14"}
    assert result.answer == "12"  # weighted: 0.7 + 0.6 for 12 against 0.5 for 14
    assert result.usage.generated_tokens == tree.total_cost


async def test_beam_search_on_the_same_scores_lets_one_subtree_take_every_slot() -> None:
    """The contrast DVTS exists for: beam keeps A and B, both from the first request."""
    first = ["A\n\n", "B\n\n", "C\n\n", "D\n\n"]
    later = {"A\n\n": ["Answer: 1"] * 2, "B\n\n": ["Answer: 2"] * 2}
    backend = path_backend(lambda path, i, call: first[i] if path == "" else later[path][i])
    result = await BeamSearch.model_validate(fields(max_steps=2)).run(PROBLEM, context(backend))
    assert [n.text for n in result.tree.nodes("pruned")] == ["C\n\n", "D\n\n"]


async def test_a_subtree_whose_children_cannot_be_scored_ends_alone() -> None:
    scores = {k: v for k, v in SCORES.items() if k not in ("C\n\n", "D\n\n")}
    ctx = context(path_backend(steps))
    config = fields(verifier=PathScores(table=scores), selection="argmax")
    result = await DiverseVerifierTreeSearch.model_validate(config).run(PROBLEM, ctx)
    assert len(ctx.backend.requests) == 3  # the root twice, then A only
    assert result.answer == "12" and not result.budget_exhausted


def test_subtrees_need_a_width_that_divides_n() -> None:
    with pytest.raises(ValidationError, match="beam_width must divide n"):
        DiverseVerifierTreeSearch.model_validate(fields(n=6, beam_width=4))
