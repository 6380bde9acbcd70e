"""The learned verifier's two plots, on its validation problems: how well it ranks (the ROC
curve) and whether its probabilities mean what they say (the reliability diagram)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ponder.experiments.head_fitting import Fitted, reliability


def plot_roc(fits: Mapping[str, Fitted], path: Path) -> Path:
    """One ROC curve per head (labels >= 0.5 count as positive), with the chance diagonal."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    for name, fit in fits.items():
        hard = fit.validation_labels >= 0.5
        if len(np.unique(hard)) < 2:
            continue  # no curve without both classes
        false_positive, true_positive, _ = roc_curve(hard, fit.validation_probabilities)
        auc = fit.head.metrics.validation_auc
        axes.plot(false_positive, true_positive, label=f"{name} ({fit.head.metrics.kind}), AUC {auc:.3f}")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="validation ROC")
    axes.legend(loc="lower right", fontsize="small")
    figure.savefig(path, dpi=150, bbox_inches="tight")
    return path


def plot_reliability(fits: Mapping[str, Fitted], path: Path) -> Path:
    """Per head, the mean label against the mean predicted probability in each bin (the
    diagonal is perfect calibration; a marker's size is its bin's share of examples)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="calibrated")
    for name, fit in fits.items():
        points = reliability(fit.validation_labels, fit.validation_probabilities)
        total = sum(n for _, _, n in points)
        axes.plot(
            [p for p, _, _ in points], [o for _, o, _ in points], marker="o",
            label=f"{name}, ECE {fit.head.metrics.validation_ece:.3f}",
        )
        axes.scatter(
            [p for p, _, _ in points], [o for _, o, _ in points],
            s=[400 * n / total for _, _, n in points], alpha=0.3,
        )
    axes.set(xlabel="predicted P(correct)", ylabel="observed share correct", xlim=(0, 1),
             ylim=(0, 1), title="validation reliability")
    axes.legend(loc="upper left", fontsize="small")
    figure.savefig(path, dpi=150, bbox_inches="tight")
    return path
