"""DeepConf's confidence arithmetic: token confidence over the top k, sliding groups, the trace
measures, and the streaming watch agreeing with the whole-trace groups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.verifiers.confidence import (
    ConfidenceSettings,
    GroupWatch,
    group_confidences,
    token_confidence,
)


@pytest.mark.parametrize(
    ("top", "k", "expected"),
    [
        ({1: -0.1, 2: -3.0, 3: -5.0}, 2, 1.55),
        ({1: -0.1, 2: -3.0, 3: -5.0}, 5, (0.1 + 3.0 + 5.0) / 3),
        ({7: -0.5, 1: -0.1, 2: -3.0}, 1, 0.1),
        ({}, 3, 0.0),
    ],
    ids=["the-k-highest", "fewer-than-k-returned", "sampled-token-not-the-top", "nothing-returned"],
)
def test_token_confidence_is_minus_the_mean_of_the_top_k(
    top: dict[int, float], k: int, expected: float
) -> None:
    assert token_confidence(top, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("confidences", "window", "groups"),
    [
        ([1.0, 2.0, 3.0, 4.0], 2, [1.5, 2.5, 3.5]),
        ([1.0, 2.0, 3.0, 4.0], 4, [2.5]),
        ([1.0, 3.0], 5, [2.0]),
        ([], 3, []),
    ],
    ids=["sliding", "one-full-window", "shorter-than-a-window", "empty"],
)
def test_group_confidences(confidences: list[float], window: int, groups: list[float]) -> None:
    assert group_confidences(confidences, window) == pytest.approx(groups)


TRACE = [5.0, 5.0, 1.0, 1.0, 5.0, 5.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (ConfidenceSettings(window=2), 1.0),
        (ConfidenceSettings(window=4), 3.0),
        (ConfidenceSettings(window=2, measure="tail", tail=3), (5.0 + 3.0 + 3.0) / 3),
        (ConfidenceSettings(measure="mean"), 3.5),
        (ConfidenceSettings(window=2, measure="bottom_share", bottom_share=0.3), (1.0 + 3.0) / 2),
    ],
    ids=["lowest-group", "lowest-wider-group", "tail", "mean", "bottom-share"],
)
def test_trace_measures(settings: ConfidenceSettings, expected: float) -> None:
    assert settings.trace(TRACE) == pytest.approx(expected)


def test_a_trace_without_tokens_has_no_confidence() -> None:
    assert ConfidenceSettings().trace([]) is None
    assert ConfidenceSettings().lowest_group([]) is None


def _tops(confidences: list[float]) -> list[dict[int, float]]:
    return [{0: -c} for c in confidences]


def test_the_watch_judges_only_full_groups_and_fires_at_the_crossing_token() -> None:
    watch = GroupWatch(ConfidenceSettings(window=3, top_k=1), threshold=2.0)
    tops = _tops([0.1, 0.1, 6.0, 6.0, 6.0, 0.5, 0.5, 0.5])
    fired = [watch.below(tops[: i + 1]) for i in range(len(tops))]
    # The first two tokens are no group; then 2.07, 4.03, 6.0, 4.17, 2.33 and at last 0.5.
    assert fired == [False] * 7 + [True]


@given(
    st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=1, max_value=7),
)
def test_the_watch_sees_the_same_lowest_group_as_the_whole_trace(
    confidences: list[float], window: int, chunk: int
) -> None:
    settings = ConfidenceSettings(window=window, top_k=1)
    watch = GroupWatch(settings, threshold=0.0)
    tops = _tops(confidences)
    for end in range(chunk, len(tops) + chunk, chunk):  # streamed in uneven deltas
        watch.below(tops[:end])
    if len(confidences) >= window:
        assert watch.lowest == pytest.approx(settings.lowest_group(confidences), abs=1e-9)
    else:
        assert watch.lowest is None
