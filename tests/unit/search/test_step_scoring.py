"""Scoring tree nodes: one verifier call per frontier, process verifiers see the tree's steps,
failures leave nodes unscored (open ones pruned) without stopping the rest."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from search_helpers import PROBLEM, PathScores, context

from ponder.backends.scripted import ScriptedBackend
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.search.expansion import Rollout
from ponder.search.scoring import score_nodes
from ponder.search.tree import ROOT, SearchTree
from ponder.verifiers.base import Score
from ponder.verifiers.process import ProcessVerifier


class StepLengths(ProcessVerifier):
    """Scores each step by its length / 10 and remembers every batch of paths it saw."""

    seen: list = []

    async def _score_steps(self, problem: Problem, paths: list[list[str]], ctx: Run) -> list:
        self.seen.append(paths)
        return [[len(step) / 10 for step in steps] for steps in paths]


def idle() -> Run:
    """A context whose backend is never asked to generate (scorers here run no model)."""
    return context(ScriptedBackend.from_script([]))


def tree() -> SearchTree:
    t = SearchTree([ord("Q")])
    a = t.add_child(ROOT, [ord(c) for c in "step one\n\n"], "step one\n\n")
    t.add_child(a.id, [ord(c) for c in "cut at lim"], "cut at lim", finish_reason="length")
    t.add_child(a.id, [ord(c) for c in "Answer: 5"], "Answer: 5", status="finished")
    return t


async def test_a_process_verifier_sees_one_step_per_node_in_one_call() -> None:
    t, verifier = tree(), StepLengths(aggregation="min", seen=[])
    scores = await score_nodes(t, [2, 3], PROBLEM, verifier, idle())
    assert verifier.seen == [[["step one", "cut at lim"], ["step one", "Answer: 5"]]]
    assert [s.steps for s in scores] == [(0.8, 1.0), (0.8, 0.9)]
    assert (t.node(2).score, t.node(2).step_scores) == (0.8, (0.8, 1.0))  # the aggregate: min


async def test_unscored_open_nodes_are_pruned_and_finished_ones_stay_candidates() -> None:
    t = tree()
    await score_nodes(t, [2, 3], PROBLEM, PathScores(table={}), idle())
    assert [(t.node(i).status, t.node(i).score) for i in (2, 3)] == [
        ("pruned", None), ("finished", None)]


async def test_a_crash_on_one_node_leaves_the_others_scored() -> None:
    t = tree()
    scorer = PathScores(table={"step one\n\nAnswer: 5": 0.5}, raise_on=("step one\n\ncut at lim",))
    await score_nodes(t, [2, 3], PROBLEM, scorer, idle())
    assert t.node(2).status == "pruned" and "the scorer crashed" in (t.node(2).score_reason or "")
    assert t.node(3).score == 0.5


async def test_errors_no_retry_can_fix_propagate() -> None:
    class Misconfigured(PathScores):
        async def _score(self, problem: Problem, candidates: Sequence, ctx: Run) -> list[Score]:
            raise BadRequestError("template is missing {step}")

    with pytest.raises(BadRequestError, match="template"):
        await score_nodes(tree(), [2], PROBLEM, Misconfigured(table={}), idle())


async def test_a_rollout_is_scored_after_the_path() -> None:
    t = tree()
    rolled = {2: Rollout(token_ids=[ord("!")], text=" more\n\n", finished=False)}
    scorer = PathScores(table={"step one\n\ncut at lim more\n\n": 0.9})
    await score_nodes(t, [2], PROBLEM, scorer, idle(), rollouts=rolled)
    assert t.node(2).score == 0.9
