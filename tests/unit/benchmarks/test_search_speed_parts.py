"""The search speed benchmark's bound: the engine steps a search's barriers force, and the
engine's cost per step and per sequence read off two ceiling rounds."""

from __future__ import annotations

import pytest
from search_speed import barrier_steps, step_costs

from ponder.core.result import Result
from ponder.core.usage import Usage
from ponder.search.tree import ROOT, SearchTree


def _searched(steps: list[list[int]]) -> Result:
    """A result whose tree has, at each depth, one child per length given (all under the
    first node of the depth above)."""
    tree = SearchTree([1, 2, 3])
    parent = ROOT
    for lengths in steps:
        nodes = [tree.add_child(parent, [7] * length, "x") for length in lengths]
        parent = nodes[0].id
    return Result(strategy="beam", candidates=[], selected_index=None, usage=Usage(), tree=tree)


def test_barrier_steps_sum_each_steps_longest_request_and_take_the_slowest_problem() -> None:
    slow = _searched([[3, 7, 2], [5, 1], [4]])  # 7 + 5 + 4
    fast = _searched([[10], [2, 2]])  # 10 + 2
    assert barrier_steps([fast, slow]) == 16
    assert barrier_steps([fast]) == 12


def test_step_costs_recover_per_step_and_per_sequence_seconds() -> None:
    per_step, per_sequence, length, problems, n = 0.05, 0.005, 40, 8, 8
    wide = length * (per_step + problems * n * per_sequence)
    narrow = length * (per_step + problems * per_sequence)
    assert step_costs(wide, narrow, length, problems, n) == pytest.approx((per_step, per_sequence))
