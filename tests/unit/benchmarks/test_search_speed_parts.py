"""The search speed benchmark's bound: the engine steps a search's barriers force, the
engine's cost per step and per sequence read off two ceiling rounds, and the most of the
continuations' prompts a prefix cache could serve."""

from __future__ import annotations

import pytest
from search_speed import Run, barrier_steps, cacheable_share, step_costs

from ponder.core.generation import GenerationRequest, GenerationState

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


def _requests(*lengths: int) -> list[GenerationState]:
    return [GenerationState.start(GenerationRequest(prompt_token_ids=[5] * n)) for n in lengths]


def test_the_cacheable_share_counts_whole_blocks_short_of_each_continuations_last_token() -> None:
    # Roots of 40 tokens: the 40-token requests are first steps, not continuations. Of the
    # continuations, 56 tokens hold one whole block of 32 below their last token, 65 hold two,
    # and 64 only one (its last token is computed, so its second block is not whole).
    run = Run(results=[], seconds=1.0, calls=[_requests(40, 56, 65), _requests(40, 64)])
    assert cacheable_share(run, [40, 40], 32) == pytest.approx((32 + 64 + 32) / (56 + 65 + 64))
    assert cacheable_share(run, [40, 40], 16) == pytest.approx((48 + 64 + 48) / (56 + 65 + 64))
    assert cacheable_share(Run(results=[], seconds=1.0, calls=[_requests(40)]), [40], 32) == 0.0
