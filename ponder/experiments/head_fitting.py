"""Fit a learned verifier's head on labelled embeddings, and measure it on problems it did
not see.

Examples are split by problem (a problem's chains all go to one side), so the validation
numbers say how the head does on new problems, not on new chains of problems it has seen.
Labels may be soft (a step's Monte Carlo value): each example then counts as a positive with
weight q and a negative with weight 1 - q, which is logistic regression (or an MLP's
cross-entropy) on the soft label itself. Several heads are fitted and the one with the best
validation ROC AUC is kept (ties: the simpler, listed first); that choice is made on the
validation problems, so their numbers flatter it slightly, and a held-out set is the honest
test (``benchmarks/learned_verifier.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ponder.errors import BadRequestError
from ponder.verifiers.heads import Head, HeadMetrics

log = logging.getLogger(__name__)

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Examples:
    """Embeddings with their labels in [0, 1] and the problem each came from."""

    features: np.ndarray
    labels: np.ndarray
    groups: Sequence[str]

    def __post_init__(self) -> None:
        if not len(self.features) == len(self.labels) == len(self.groups):
            raise ValueError("features, labels and groups must have one entry per example")


@dataclass(frozen=True)
class Fitted:
    """A head and what it predicted for its validation examples (for the plots)."""

    head: Head
    validation_labels: np.ndarray
    validation_probabilities: np.ndarray


def candidate_heads(seed: int) -> dict[str, Any]:
    """The heads tried, simplest first: logistic regression at three strengths of L2, and a
    one-hidden-layer MLP (ReLU, 64 units), each after standardization."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    heads: dict[str, Any] = {
        f"logistic C={c:g}": make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        for c in (0.01, 0.1, 1.0)
    }
    heads["mlp 64"] = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=1000, random_state=seed),
    )
    return heads


def fit_head(
    examples: Examples,
    *,
    name: str,
    validation: float,
    min_positives: int,
    min_negatives: int,
    seed: int,
) -> Fitted:
    """The best of ``candidate_heads`` by validation AUC, fitted on the training problems.
    Refuses (``BadRequestError``) too few positive or negative examples, or too few problems
    to hold some out."""
    positive = examples.labels >= 0.5
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if positives < min_positives or negatives < min_negatives:
        raise BadRequestError(
            f"too few examples to train the {name} head: {positives} positive and {negatives} "
            f"negative (label >= 0.5 or not); head.min_positives is {min_positives} and "
            f"head.min_negatives {min_negatives}. Use more problems (dataset size), more "
            "chains (strategy.n), or problems the model solves some of the time"
        )
    train, held = _split(examples.groups, validation, seed)
    x, q = examples.features[train], examples.labels[train]
    if len(np.unique(q >= 0.5)) < 2:
        raise BadRequestError(
            f"the {name} head's training problems hold only one class of example; use more problems"
        )
    rows, targets, weights = _soft(x, q)
    xv, qv = examples.features[held], examples.labels[held]
    tried: dict[str, float | None] = {}
    fitted: dict[str, tuple[Any, np.ndarray]] = {}
    for kind, pipeline in candidate_heads(seed).items():
        pipeline.fit(rows, targets, **{f"{pipeline.steps[-1][0]}__sample_weight": weights})
        probabilities = pipeline.predict_proba(xv)[:, 1]
        tried[kind] = _auc(qv, probabilities)
        fitted[kind] = (pipeline, probabilities)
        log.debug("%s head %s: validation AUC %s", name, kind, tried[kind])
    if any(auc is not None for auc in tried.values()):
        chosen = max(tried, key=lambda kind: -1.0 if tried[kind] is None else tried[kind])
    else:  # one class among the validation examples: no AUC, rank by Brier score instead
        chosen = min(fitted, key=lambda kind: _brier(qv, fitted[kind][1]))
    pipeline, probabilities = fitted[chosen]
    metrics = HeadMetrics(
        kind=chosen,
        tried=tried,
        train_examples=len(q),
        train_positives=int((q >= 0.5).sum()),
        validation_examples=len(qv),
        validation_positives=int((qv >= 0.5).sum()),
        validation_auc=tried[chosen],
        validation_brier=_brier(qv, probabilities),
        validation_ece=expected_calibration_error(qv, probabilities),
    )
    return Fitted(head_from_pipeline(pipeline, metrics), qv, probabilities)


def head_from_pipeline(pipeline: Any, metrics: HeadMetrics) -> Head:
    """A fitted StandardScaler + (LogisticRegression | MLPClassifier) as plain numbers."""
    scaler, model = pipeline.steps[0][1], pipeline.steps[-1][1]
    if model.classes_.tolist() != [0, 1]:
        raise ValueError(f"a head is fitted on classes 0 and 1, not {model.classes_.tolist()}")
    if hasattr(model, "coefs_"):
        if model.activation != "relu":
            raise ValueError(f"an MLP head's hidden layers must be ReLU, not {model.activation}")
        weights, biases, kind = model.coefs_, model.intercepts_, "mlp"
    else:
        weights, biases, kind = [model.coef_.T], [model.intercept_], "logistic"
    return Head(
        kind=kind,
        mean=scaler.mean_.tolist(),
        scale=scaler.scale_.tolist(),
        weights=[w.tolist() for w in weights],
        biases=[b.tolist() for b in biases],
        metrics=metrics,
    )


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by size."""
    points = reliability(labels, probabilities)
    return float(sum(n * abs(p - o) for p, o, n in points) / max(len(labels), 1))


def reliability(labels: np.ndarray, probabilities: np.ndarray) -> list[tuple[float, float, int]]:
    """(mean predicted, mean label, count) for each non-empty equal-width bin."""
    bins = np.minimum((probabilities * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    return [
        (float(probabilities[bins == b].mean()), float(labels[bins == b].mean()), int((bins == b).sum()))
        for b in range(CALIBRATION_BINS)
        if (bins == b).any()
    ]


def _split(groups: Sequence[str], validation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation examples, split by problem."""
    from sklearn.model_selection import GroupShuffleSplit

    if len(set(groups)) < 2:
        raise BadRequestError("at least 2 problems are needed, to hold some out for validation")
    problems = len(set(groups))
    if problems - math.ceil(validation * problems) < 1:  # GroupShuffleSplit's own rounding
        raise BadRequestError(
            f"head.validation {validation:g} of {problems} problems holds out every one of them, "
            "leaving none to train on; use more problems or a smaller head.validation"
        )
    split = GroupShuffleSplit(n_splits=1, test_size=validation, random_state=seed)
    train, held = next(split.split(np.zeros(len(groups)), groups=list(groups)))
    return train, held


def _soft(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each example as a positive of weight q and a negative of weight 1 - q (zero weights
    dropped)."""
    rows = np.concatenate([x, x])
    targets = np.concatenate([np.ones(len(q), dtype=int), np.zeros(len(q), dtype=int)])
    weights = np.concatenate([q, 1.0 - q])
    keep = weights > 0
    return rows[keep], targets[keep], weights[keep]


def _auc(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    hard = labels >= 0.5
    if len(np.unique(hard)) < 2:
        return None
    return float(roc_auc_score(hard, probabilities))


def _brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((probabilities - labels) ** 2))
