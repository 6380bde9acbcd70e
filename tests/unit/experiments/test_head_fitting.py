"""Fitting a learned verifier's head: held-out problems stay whole, soft labels count as
weighted examples, the kept head is the best on validation, calibration is measured, and too
few examples are refused naming the setting. Also: the split keeps every problem whole and
follows the seed, the validation numbers survive the file (for the MLP too, when it wins),
and a validation set of one class falls back to the Brier score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ponder.errors import BadRequestError
from ponder.experiments.head_fitting import (
    Examples,
    _soft,
    _split,
    expected_calibration_error,
    fit_head,
    reliability,
)
from ponder.verifiers.heads import Features, VerifierFile, load_verifier, save_verifier

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


def blobs(problems: int = 16, per_problem: int = 5, seed: int = 0) -> Examples:
    """Two well separated Gaussian blobs in 3 dimensions, labels mixed within each problem."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(problems * per_problem) % 2).astype(float)
    features = rng.normal(0, 1, (len(labels), 3)) + labels[:, None] * [4.0, -4.0, 0.0]
    return Examples(features, labels, [f"p{i // per_problem}" for i in range(len(labels))])


def round_trip(tmp_path: Path, head: object) -> object:
    features = Features(model="org/features", fingerprint="hub:org/features", dimensions=head.inputs)
    path = save_verifier(VerifierFile(features=features, heads={"outcome": head}), tmp_path / "v.json")
    return load_verifier(path).heads["outcome"]


# -- the split ----------------------------------------------------------------------------------
def test_the_split_keeps_every_problem_on_one_side_and_follows_the_seed() -> None:
    groups = [f"p{i % 20}" for i in range(100)]  # problems interleaved, 5 examples each
    train, held = _split(groups, 0.25, seed=0)
    assert sorted([*train, *held]) == list(range(100))
    held_problems = {groups[i] for i in held}
    assert held_problems.isdisjoint(groups[i] for i in train)
    assert len(held_problems) == math.ceil(0.25 * 20) and len(held) == 25
    assert np.array_equal(_split(groups, 0.25, seed=0)[1], held)  # the seed pins it
    assert len({tuple(_split(groups, 0.25, seed=s)[1]) for s in range(5)}) > 1  # and is used


@pytest.mark.parametrize(("problems", "validation"), [(2, 0.6), (3, 0.9)])
def test_a_split_that_holds_out_every_problem_is_refused_naming_the_setting(
    problems: int, validation: float
) -> None:
    with pytest.raises(BadRequestError, match=f"head.validation {validation:g} of {problems} problems "
                                              "holds out every one of them"):
        _split([f"p{i}" for i in range(problems)] * 3, validation, seed=0)


def test_two_problems_with_a_small_validation_share_still_split() -> None:
    train, held = _split(["a", "b", "a", "b"], 0.5, seed=0)
    assert len(train) == len(held) == 2


# -- what is fitted and measured --------------------------------------------------------------------
def test_the_validation_numbers_are_the_kept_heads_on_the_held_out_rows_and_survive_the_file(
    tmp_path: Path,
) -> None:
    data = blobs()
    fitted = fit_head(data, name="outcome", **SETTINGS)
    _, held = _split(data.groups, SETTINGS["validation"], SETTINGS["seed"])
    assert np.array_equal(fitted.validation_labels, data.labels[held])
    metrics = fitted.head.metrics
    assert metrics.validation_auc > 0.99
    assert (metrics.train_examples, metrics.validation_examples) == (80 - len(held), len(held))
    assert metrics.validation_positives == int(data.labels[held].sum())
    assert metrics.validation_brier == pytest.approx(
        np.mean((fitted.validation_probabilities - data.labels[held]) ** 2)
    )
    loaded = round_trip(tmp_path, fitted.head)
    assert np.allclose(loaded.predict(data.features[held]), fitted.validation_probabilities,
                       rtol=0, atol=1e-9)


def test_an_mlp_is_kept_when_only_it_can_separate_the_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (240, 2))
    labels = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(float)  # XOR: no line separates it
    data = Examples(x, labels, [f"p{i // 8}" for i in range(240)])
    fitted = fit_head(data, name="outcome", **SETTINGS)
    metrics = fitted.head.metrics
    assert metrics.kind == "mlp 64" and fitted.head.kind == "mlp"
    assert metrics.validation_auc > 0.9
    assert all(auc < 0.8 for kind, auc in metrics.tried.items() if kind.startswith("logistic"))
    _, held = _split(data.groups, SETTINGS["validation"], SETTINGS["seed"])
    assert np.allclose(round_trip(tmp_path, fitted.head).predict(x[held]), fitted.validation_probabilities,
                       rtol=0, atol=1e-9)


# -- soft labels ------------------------------------------------------------------------------------
def test_a_soft_label_is_a_positive_of_weight_q_and_a_negative_of_weight_1_minus_q() -> None:
    x = np.array([[1.0], [2.0], [3.0]])
    rows, targets, weights = _soft(x, np.array([1.0, 0.0, 0.25]))
    assert rows[:, 0].tolist() == [1.0, 3.0, 2.0, 3.0]  # the zero weights dropped
    assert targets.tolist() == [1, 1, 0, 0]
    assert weights.tolist() == [1.0, 0.25, 1.0, 0.75]


def test_with_features_that_say_nothing_the_head_predicts_the_mean_soft_label() -> None:
    """Hard labels would give the share of labels >= 0.5 (1/3); soft ones weigh in q."""
    labels = np.array([0.9, 0.2, 0.3] * 20)
    data = Examples(np.zeros((60, 2)), labels, [f"p{i // 3}" for i in range(60)])
    fitted = fit_head(data, name="step", **SETTINGS)
    train, _ = _split(data.groups, SETTINGS["validation"], SETTINGS["seed"])
    assert fitted.head.metrics.kind == "logistic C=0.01"  # every AUC is 0.5: the simplest kept
    assert fitted.head.metrics.validation_auc == 0.5
    assert fitted.head.predict(np.zeros((1, 2)))[0] == pytest.approx(labels[train].mean(), abs=1e-3)
    assert labels[train].mean() == pytest.approx(1.4 / 3)


# -- one class on a side ----------------------------------------------------------------------------
def held_and_training(problems: int = 20, per_problem: int = 3) -> tuple[list[str], np.ndarray]:
    groups = [f"p{i // per_problem}" for i in range(problems * per_problem)]
    _, held = _split(groups, SETTINGS["validation"], SETTINGS["seed"])
    is_held = np.zeros(len(groups), dtype=bool)
    is_held[held] = True
    return groups, is_held


def test_training_problems_of_one_class_are_refused() -> None:
    groups, is_held = held_and_training()
    labels = is_held.astype(float)  # every positive among the validation problems
    data = Examples(np.arange(len(groups), dtype=float)[:, None], labels, groups)
    with pytest.raises(BadRequestError, match="the outcome head's training problems hold only one class"):
        fit_head(data, name="outcome", **SETTINGS)


def test_validation_problems_of_one_class_rank_the_heads_by_brier_score() -> None:
    groups, is_held = held_and_training()
    rng = np.random.default_rng(2)
    labels = np.where(is_held, 1.0, (np.arange(len(groups)) % 2).astype(float))
    features = rng.normal(0, 1, (len(groups), 2)) + labels[:, None] * 3
    fitted = fit_head(Examples(features, labels, groups), name="outcome", **SETTINGS)
    metrics = fitted.head.metrics
    assert metrics.validation_auc is None and set(metrics.tried.values()) == {None}
    assert metrics.kind in metrics.tried and len(metrics.tried) == 4
    assert metrics.validation_positives == metrics.validation_examples == int(is_held.sum())
    assert metrics.validation_brier == pytest.approx(np.mean((fitted.validation_probabilities - 1) ** 2))


# -- refusals of the counts -------------------------------------------------------------------------
@pytest.mark.parametrize(("labels", "message"), [
    ([0.5] * 4 + [0.0] * 10, "4 positive and 10 negative"),  # 0.5 counts as positive
    ([0.49] * 10 + [1.0] * 5, "5 positive and 10 negative"),
], ids=["half-is-positive", "below-half-is-negative"])
def test_the_count_thresholds_split_labels_at_one_half(labels: list[float], message: str) -> None:
    data = Examples(np.zeros((len(labels), 1)), np.asarray(labels), [f"p{i}" for i in range(len(labels))])
    settings = {**SETTINGS, "min_positives": 5, "min_negatives": 11}
    with pytest.raises(BadRequestError, match=f"{message} .*head.min_positives is 5 and "
                                              "head.min_negatives 11"):
        fit_head(data, name="outcome", **settings)


def test_examples_must_have_one_label_and_group_each() -> None:
    with pytest.raises(ValueError, match="one entry per example"):
        Examples(np.zeros((3, 2)), np.zeros(3), ["p0", "p1"])


# -- calibration ------------------------------------------------------------------------------------
def test_calibrated_bins_have_no_calibration_error() -> None:
    probabilities = np.array([0.25] * 4 + [0.75] * 4)
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    assert reliability(labels, probabilities) == [(0.25, 0.25, 4), (0.75, 0.75, 4)]
    assert expected_calibration_error(labels, probabilities) == 0.0
    assert expected_calibration_error(np.array([0.6, 0.3]), np.array([0.6, 0.3])) == pytest.approx(0.0)


def test_calibration_error_of_a_known_case() -> None:
    # bin 0: 0.05 predicted for a 1 (gap 0.95); bin 1: 0.15 for a 0 (gap 0.15)
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([0.05, 0.15])) == pytest.approx(0.55)
    # a probability of exactly 1 falls in the last bin, with 0.95: one bin, gap 0.025
    assert reliability(np.array([1.0, 1.0]), np.array([0.95, 1.0])) == [(pytest.approx(0.975), 1.0, 2)]
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([0.95, 1.0])) == pytest.approx(0.025)
