"""Fitting a learned verifier's head: held-out problems stay whole, soft labels count as
weighted examples, the kept head is the best on validation, calibration is measured, and too
few examples are refused naming the setting."""

from __future__ import annotations

import numpy as np
import pytest

from ponder.errors import BadRequestError
from ponder.experiments.head_fitting import Examples, expected_calibration_error, fit_head, reliability

SETTINGS = {"validation": 0.25, "min_positives": 5, "min_negatives": 5, "seed": 0}


def examples(problems: int = 20, per_problem: int = 6, soft: bool = False) -> Examples:
    """Chains whose first feature says whether they are right (plus noise)."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, problems * per_problem).astype(float)
    if soft:
        labels = np.clip(labels * 0.8 + 0.1 + rng.normal(0, 0.05, len(labels)), 0, 1)
    features = np.column_stack([labels * 3 + rng.normal(0, 1, len(labels)),
                                rng.normal(0, 1, (len(labels), 3))])
    groups = [f"p{i // per_problem}" for i in range(len(labels))]
    return Examples(features, labels, groups)


def test_a_separable_signal_is_learned_and_measured_on_whole_held_out_problems() -> None:
    data = examples()
    fitted = fit_head(data, name="outcome", **SETTINGS)
    metrics = fitted.head.metrics
    assert metrics.validation_auc is not None and metrics.validation_auc > 0.9
    assert metrics.validation_auc == max(v for v in metrics.tried.values() if v is not None)
    assert metrics.kind in metrics.tried and len(metrics.tried) == 4
    assert metrics.train_examples + metrics.validation_examples == 120
    assert metrics.validation_examples % 6 == 0  # whole problems: 6 chains each
    assert metrics.validation_examples == 30  # a quarter of the 20 problems
    assert len(fitted.validation_probabilities) == metrics.validation_examples
    assert 0.0 <= metrics.validation_ece <= 1.0 and 0.0 <= metrics.validation_brier <= 0.25


def test_soft_labels_fit_and_the_head_predicts_what_it_was_measured_with() -> None:
    data = examples(soft=True)
    fitted = fit_head(data, name="step", **SETTINGS)
    assert fitted.head.metrics.validation_auc > 0.9
    # soft labels are distinct floats, so they find the validation rows again
    rows = data.features[[i for i, q in enumerate(data.labels) if q in set(fitted.validation_labels)]]
    assert len(rows) == len(fitted.validation_labels)
    assert np.allclose(np.sort(fitted.head.predict(rows)), np.sort(fitted.validation_probabilities))


@pytest.mark.parametrize(("labels", "message"), [
    ([1.0] * 3 + [0.0] * 20, "3 positive and 20 negative .* head.min_positives is 5"),
    ([1.0] * 20 + [0.0] * 2, "20 positive and 2 negative"),
], ids=["few-positives", "few-negatives"])
def test_too_few_examples_of_a_class_are_refused(labels: list[float], message: str) -> None:
    data = Examples(np.zeros((len(labels), 2)), np.asarray(labels), [f"p{i}" for i in range(len(labels))])
    with pytest.raises(BadRequestError, match=f"too few examples to train the outcome head: {message}"):
        fit_head(data, name="outcome", **SETTINGS)


def test_one_problem_cannot_hold_some_out() -> None:
    data = Examples(np.zeros((20, 2)), np.asarray([0.0, 1.0] * 10), ["p0"] * 20)
    with pytest.raises(BadRequestError, match="at least 2 problems"):
        fit_head(data, name="outcome", **SETTINGS)


def test_calibration_error_is_the_weighted_gap_per_bin() -> None:
    labels = np.array([0.0, 1.0, 1.0, 1.0])
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0.01, 0.99])) == pytest.approx(0.01)
    # two bins: 0.25 predicted for a 0 (gap 0.25), and 0.95 for three 1s (gap 0.05)
    probabilities = np.array([0.25, 0.95, 0.95, 0.95])
    assert expected_calibration_error(labels, probabilities) == pytest.approx((0.25 + 3 * 0.05) / 4)
    assert reliability(labels, probabilities) == [(0.25, 0.0, 1), (pytest.approx(0.95), 1.0, 3)]
