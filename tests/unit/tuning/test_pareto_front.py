"""The Pareto front of hand-made trials, and properties that hold for any trials."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.errors import BadRequestError
from ponder.tuning.pareto import TrialPoint, front_table, pareto_front


def point(label: str, accuracy: float, tokens: float, seconds: float = 1.0, **kwargs) -> TrialPoint:
    return TrialPoint(label=label, strategy={"name": label}, accuracy=accuracy,
                      generated_tokens=tokens, wall_seconds=seconds, **kwargs)


def labels(points: list[TrialPoint]) -> list[str]:
    return [p.label for p in points]


TRIALS = [
    point("sc8", 0.60, 800, seconds=4.0),
    point("greedy", 0.30, 100, seconds=9.0),
    point("bon4", 0.40, 450, seconds=2.0),   # dominated by sc4: less accurate, dearer
    point("sc4", 0.50, 400, seconds=3.0),
    point("bon16", 0.55, 1600, seconds=1.0),  # dominated by sc8 on tokens, cheapest in time
]


def test_dominated_points_are_dropped_and_the_front_is_cheapest_first() -> None:
    assert labels(pareto_front(TRIALS)) == ["greedy", "sc4", "sc8"]


def test_the_wall_time_front_trades_accuracy_against_seconds() -> None:
    assert labels(pareto_front(TRIALS, cost="wall_seconds")) == ["bon16", "sc8"]


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([point("a", 0.5, 100), point("b", 0.5, 100)], ["a"]),   # identical: the first kept
        ([point("a", 0.5, 200), point("b", 0.5, 100)], ["b"]),   # as accurate, cheaper
        ([point("a", 0.4, 100), point("b", 0.5, 100)], ["b"]),   # as cheap, more accurate
        ([point("only", 0.1, 10)], ["only"]),
        ([], []),
    ],
    ids=["identical", "same-accuracy", "same-cost", "single", "none"],
)
def test_ties_and_small_inputs(points: list[TrialPoint], front: list[str]) -> None:
    assert labels(pareto_front(points)) == front


def test_an_unknown_cost_is_an_error_naming_the_choices() -> None:
    message = r"cost must be one of \['generated_tokens', 'wall_seconds'\], got 'accuracy'"
    with pytest.raises(BadRequestError, match=message):
        pareto_front(TRIALS, cost="accuracy")


def dominates(a: TrialPoint, b: TrialPoint) -> bool:
    return (a.accuracy >= b.accuracy and a.generated_tokens <= b.generated_tokens
            and (a.accuracy > b.accuracy or a.generated_tokens < b.generated_tokens))


trials = st.lists(
    st.builds(point, label=st.text(max_size=3),
              accuracy=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
              tokens=st.integers(0, 6).map(float)),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(trials)
def test_the_front_is_exactly_the_undominated_points(points: list[TrialPoint]) -> None:
    front = pareto_front(points)
    members = {id(p) for p in front}
    for p in front:
        assert not any(dominates(q, p) for q in points)
    for p in points:
        if id(p) not in members:  # dominated, or a later copy of a front point
            assert any(dominates(q, p) for q in points) or any(
                (q.accuracy, q.generated_tokens) == (p.accuracy, p.generated_tokens) for q in front)
    assert [p.generated_tokens for p in front] == sorted(p.generated_tokens for p in front)
    assert len({(p.accuracy, p.generated_tokens) for p in front}) == len(front)


def test_the_table_lists_every_trial_by_tokens_and_marks_the_front() -> None:
    trials = [*TRIALS[:3], point("sc4", 0.5, 400, seconds=3.0, accuracy_interval=(0.25, 0.75))]
    lines = front_table(trials, pareto_front(trials)).splitlines()
    assert lines[0].split() == ["label", "accuracy", "tokens", "seconds", "front"]
    assert [line.split()[0] for line in lines[1:]] == ["greedy", "sc4", "bon4", "sc8"]
    assert lines[2].split() == ["sc4", "0.500", "[0.250,", "0.750]", "400", "3.000", "*"]
    assert lines[3].split() == ["bon4", "0.400", "450", "2.000"]  # off the front: no mark


def test_the_table_marks_the_front_by_wall_time_in_a_column_of_its_own() -> None:
    lines = front_table(TRIALS, pareto_front(TRIALS), pareto_front(TRIALS, cost="wall_seconds")).splitlines()
    assert lines[0].split() == ["label", "accuracy", "tokens", "seconds", "front", "time_front"]
    at = lines[0].index("time_front")
    marks = {line.split()[0]: (line[at - 7:at].strip(), line[at:].strip()) for line in lines[1:]}
    # bon16 is off the token front but the fastest, and beats bon4, sc4 and greedy in time
    assert marks == {"greedy": ("*", ""), "sc4": ("*", ""), "bon4": ("", ""), "sc8": ("*", "*"),
                     "bon16": ("", "*")}
