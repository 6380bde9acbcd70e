"""The priority frontier: lowest priority first, ties first-in first-out, re-prioritizing and
discarding, and clear errors for priorities that have no order."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.errors import BadRequestError
from ponder.search.frontier import Frontier


def _drain(frontier: Frontier) -> list:
    return [frontier.pop() for _ in range(len(frontier))]


def test_pops_lowest_priority_first() -> None:
    frontier: Frontier[str] = Frontier()
    for key, priority in [("a", 0.7), ("b", 0.2), ("c", 1.5), ("d", -0.1)]:
        frontier.push(key, priority)
    assert _drain(frontier) == [("d", -0.1), ("b", 0.2), ("a", 0.7), ("c", 1.5)]


def test_ties_go_to_the_key_pushed_first() -> None:
    frontier: Frontier[str] = Frontier()
    for key in ["late", "later", "latest"]:
        frontier.push(key, 1.0)
    frontier.push("best", 0.5)
    assert [key for key, _ in _drain(frontier)] == ["best", "late", "later", "latest"]


def test_reprioritizing_keeps_the_first_push_order_for_ties() -> None:
    frontier: Frontier[str] = Frontier()
    frontier.push("first", 3.0)
    frontier.push("second", 1.0)
    frontier.push("first", 1.0)  # now tied with "second", but it was discovered first
    assert len(frontier) == 2
    assert frontier.priority("first") == 1.0
    assert [key for key, _ in _drain(frontier)] == ["first", "second"]


def test_reprioritizing_can_move_a_key_back() -> None:
    frontier: Frontier[int] = Frontier()
    frontier.push(1, 0.1)
    frontier.push(2, 0.5)
    frontier.push(1, 0.9)
    assert _drain(frontier) == [(2, 0.5), (1, 0.9)]


def test_discard_removes_a_key_wherever_it_is() -> None:
    frontier: Frontier[str] = Frontier()
    for key, priority in [("a", 0.1), ("b", 0.2), ("c", 0.3)]:
        frontier.push(key, priority)
    assert frontier.discard("a") is True
    assert frontier.discard("a") is False
    assert "a" not in frontier and "b" in frontier
    assert frontier.peek() == ("b", 0.2)
    assert _drain(frontier) == [("b", 0.2), ("c", 0.3)]


def test_a_discarded_key_pushed_again_is_a_new_arrival() -> None:
    frontier: Frontier[str] = Frontier()
    frontier.push("a", 1.0)
    frontier.push("b", 1.0)
    frontier.discard("a")
    frontier.push("a", 1.0)
    assert [key for key, _ in _drain(frontier)] == ["b", "a"]


def test_peek_ordered_and_iteration_leave_the_frontier_as_it_was() -> None:
    frontier: Frontier[str] = Frontier()
    for key, priority in [("x", 2.0), ("y", 1.0), ("z", 2.0)]:
        frontier.push(key, priority)
    assert frontier.peek() == ("y", 1.0)
    assert frontier.ordered() == [("y", 1.0), ("x", 2.0), ("z", 2.0)]
    assert list(frontier) == ["y", "x", "z"]
    assert len(frontier) == 3


def test_empty_frontier() -> None:
    frontier: Frontier[str] = Frontier()
    assert frontier.peek() is None
    assert not frontier
    with pytest.raises(IndexError, match="empty frontier"):
        frontier.pop()


def test_infinite_priorities_sort_at_the_ends() -> None:
    frontier: Frontier[str] = Frontier()
    frontier.push("never", math.inf)
    frontier.push("now", -math.inf)
    frontier.push("soon", 0.0)
    assert [key for key, _ in _drain(frontier)] == ["now", "soon", "never"]


@pytest.mark.parametrize(
    ("priority", "message"),
    [(math.nan, "must not be NaN"), ("0.5", "must be a number"), (None, "must be a number"),
     (True, "must be a number")],
    ids=["nan", "string", "none", "bool"],
)
def test_priorities_without_an_order_are_refused(priority: object, message: str) -> None:
    frontier: Frontier[str] = Frontier()
    with pytest.raises(BadRequestError, match=message):
        frontier.push("a", priority)  # type: ignore[arg-type]
    assert len(frontier) == 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["push", "discard", "pop"]),
            st.integers(0, 6),
            st.integers(-3, 3),  # few distinct values: many ties
        ),
        max_size=60,
    )
)
def test_matches_a_sorted_list_under_any_sequence_of_operations(ops: list) -> None:
    """Against a plain model: live keys sorted by (priority, first-push order)."""
    frontier: Frontier[int] = Frontier()
    model: dict[int, tuple[float, int]] = {}
    arrivals = 0
    for op, key, priority in ops:
        if op == "push":
            if key not in model:
                model[key] = (priority, arrivals)
                arrivals += 1
            else:
                model[key] = (priority, model[key][1])
            frontier.push(key, priority)
        elif op == "discard":
            assert frontier.discard(key) is (model.pop(key, None) is not None)
        elif model:
            best = min(model, key=lambda k: model[k])
            assert frontier.pop() == (best, model.pop(best)[0])
        expected = sorted(model, key=lambda k: model[k])
        assert list(frontier) == expected
        assert len(frontier) == len(model)
