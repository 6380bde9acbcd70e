"""Trace confidence from the top logprobs a chain produced anyway (DeepConf: Fu et al., "Deep
Think with Confidence", 2025).

A token's confidence is the negative mean logprob of the top ``k`` candidates at its position:
high where the model put nearly all its mass on one token, low where it hesitated among many.
A whole trace averages this away, so DeepConf looks at *local* confidence: the mean over a
sliding window of tokens (a group). One stretch of confusion is enough to sink a trace, so
the trace's lowest group is the signal that separates right from wrong chains best; the tail
(the last tokens, where the answer is written) and the mean of the lowest groups are offered
too. The online form watches the current group as the trace streams and stops the trace the
moment it falls below a threshold (``GroupWatch``).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

TraceMeasure = Literal["lowest_group", "bottom_share", "tail", "mean"]
"""How a trace's token confidences become one number: its lowest group, the mean of its
lowest ``bottom_share`` of groups, the mean of its last ``tail`` tokens, or the plain mean."""


def token_confidence(top: Mapping[int, float], k: int) -> float:
    """-mean of the ``k`` highest logprobs at one position (fewer when fewer were returned:
    an engine adds the sampled token to its top ``k`` when it is not among them)."""
    best = heapq.nlargest(k, top.values())
    return -sum(best) / len(best) if best else 0.0


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """The mean of every full window of ``window`` tokens, in order; a trace shorter than
    one window is one group of all its tokens."""
    if not confidences:
        return []
    if len(confidences) <= window:
        return [sum(confidences) / len(confidences)]
    running = sum(confidences[:window])
    groups = [running / window]
    for i in range(window, len(confidences)):
        running += confidences[i] - confidences[i - window]
        groups.append(running / window)
    return groups


class ConfidenceSettings(BaseModel):
    """How token confidences are read and summed up per trace."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_k: int = Field(
        5, ge=1, le=20, description="Top logprobs per token that its confidence averages."
    )
    window: int = Field(
        32, ge=1, description="Tokens per group (the sliding window of local confidence; "
        "the paper used 2048 for traces of many thousand tokens)."
    )
    measure: TraceMeasure = Field(
        "lowest_group", description="How a trace's confidence is summed up (see TraceMeasure)."
    )
    bottom_share: float = Field(
        0.1, gt=0.0, le=1.0, description="For measure bottom_share: the share of lowest groups."
    )
    tail: int = Field(256, ge=1, description="For measure tail: the last tokens averaged.")

    def tokens(self, top_logprobs: Sequence[Mapping[int, float]]) -> list[float]:
        return [token_confidence(top, self.top_k) for top in top_logprobs]

    def lowest_group(self, confidences: Sequence[float]) -> float | None:
        groups = group_confidences(confidences, self.window)
        return min(groups) if groups else None

    def trace(self, confidences: Sequence[float]) -> float | None:
        """The trace's confidence under ``measure``; None for a trace with no tokens."""
        if not confidences:
            return None
        if self.measure == "lowest_group":
            return self.lowest_group(confidences)
        if self.measure == "tail":
            tail = confidences[-self.tail:]
            return sum(tail) / len(tail)
        if self.measure == "mean":
            return sum(confidences) / len(confidences)
        groups = sorted(group_confidences(confidences, self.window))
        lowest = groups[: max(1, round(len(groups) * self.bottom_share))]
        return sum(lowest) / len(lowest)


class GroupWatch:
    """The current group's confidence of a streaming trace, kept in O(1) per token, and
    whether it has fallen below ``threshold``. Only full groups are judged: the first tokens
    of a trace are too few to say anything."""

    def __init__(self, settings: ConfidenceSettings, threshold: float) -> None:
        self.settings = settings
        self.threshold = threshold
        self._window: deque[float] = deque(maxlen=settings.window)
        self._sum = 0.0
        self._seen = 0
        self.lowest: float | None = None
        """The lowest full group seen so far."""

    def below(self, top_logprobs: Sequence[Mapping[int, float]]) -> bool:
        """Read the positions not seen yet; True once a full group is below the threshold."""
        fell = False
        for top in top_logprobs[self._seen:]:
            confidence = token_confidence(top, self.settings.top_k)
            if len(self._window) == self._window.maxlen:
                self._sum -= self._window[0]
            self._window.append(confidence)
            self._sum += confidence
            if len(self._window) == self._window.maxlen:
                group = self._sum / len(self._window)
                self.lowest = group if self.lowest is None else min(self.lowest, group)
                fell = fell or group < self.threshold
        self._seen = len(top_logprobs)
        return fell


def keep_threshold(confidences: Sequence[float], keep: float) -> float:
    """The confidence that the most confident ``keep`` share of traces reach: the ``1 - keep``
    quantile (interpolated); 0 for no traces."""
    return float(np.quantile(confidences, 1.0 - keep)) if confidences else 0.0
