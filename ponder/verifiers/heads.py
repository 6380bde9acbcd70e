"""The learned verifier's file: the trained heads, the features they read, how well they did.

One JSON file (``ponder verifier train`` writes it, the ``learned`` verifier reads it):

    {"format": "ponder-learned-verifier", "version": 1,
     "features": {model, fingerprint, layer, pooling, system_prompt, step_delimiter, dimensions},
     "heads": {"outcome": HEAD, "step": HEAD},      # step only when steps were labelled
     "training": {...}}                             # dataset, counts, settings, when

A head is a standardization (mean, scale) and a small dense network (logistic regression:
one layer; an MLP: ReLU hidden layers), its output squashed by a sigmoid. Stored as plain
numbers, not a pickle, so loading a file runs no code from it and needs no scikit-learn.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError
from ponder.verifiers.features import FeatureSpec

FORMAT = "ponder-learned-verifier"
VERSION = 1
HeadName = Literal["outcome", "step"]
"""outcome: trained on whole chains, each labelled by its grade (an ORM); step: on every step
prefix, labelled by the share of Monte Carlo roll-outs from it that reach the reference."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Features(FeatureSpec):
    """The features a file's heads read: the spec they were trained on, what identifies the
    feature model's weights, and the vector's size."""

    fingerprint: str
    """``model_fingerprint`` of the feature model when the file was trained."""
    dimensions: int = Field(ge=1)

    def spec(self) -> FeatureSpec:
        return FeatureSpec(**self.model_dump(include=set(FeatureSpec.model_fields)))


class HeadMetrics(_Frozen):
    """How the head did on the examples it was not fitted on (the validation problems)."""

    kind: str
    """Which head won (its validation AUC was the best of those tried)."""
    tried: dict[str, float | None]
    """Validation ROC AUC of every head tried (None: the validation set had one class)."""
    train_examples: int
    train_positives: int
    validation_examples: int
    validation_positives: int
    validation_auc: float | None
    validation_brier: float
    validation_ece: float
    """Expected calibration error over 10 equal-width bins."""


class Head(_Frozen):
    """A standardization and a dense network with a one-logit output."""

    kind: Literal["logistic", "mlp"]
    mean: list[float]
    scale: list[float]
    weights: list[list[list[float]]]
    """Per layer, an (inputs × outputs) matrix; the last has one output."""
    biases: list[list[float]]
    metrics: HeadMetrics

    @model_validator(mode="after")
    def _shapes(self) -> Head:
        width = len(self.mean)
        if len(self.scale) != width or not self.weights or len(self.weights) != len(self.biases):
            raise ValueError("mean, scale, weights and biases do not fit together")
        for matrix, bias in zip(self.weights, self.biases):
            if len(matrix) != width or any(len(row) != len(bias) for row in matrix):
                raise ValueError(f"a layer's weights are not {width} × {len(bias)}")
            width = len(bias)
        if width != 1:
            raise ValueError(f"the last layer must have one output, not {width}")
        return self

    _arrays: list[tuple[np.ndarray, np.ndarray]] | None = PrivateAttr(None)
    """``weights`` and ``biases`` as arrays, built on first use (a head scores many times)."""

    @property
    def inputs(self) -> int:
        return len(self.mean)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(correct) for each row of ``features``."""
        if self._arrays is None:
            self._arrays = [(np.asarray(w), np.asarray(b)) for w, b in zip(self.weights, self.biases)]
        x = (np.asarray(features, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        for i, (weights, bias) in enumerate(self._arrays):
            x = x @ weights + bias
            if i < len(self._arrays) - 1:
                x = np.maximum(x, 0.0)  # ReLU between layers
        return 0.5 * (1.0 + np.tanh(x[:, 0] / 2))  # the sigmoid, without overflow


class VerifierFile(_Frozen):
    format: Literal["ponder-learned-verifier"] = FORMAT
    version: Literal[1] = VERSION
    features: Features
    heads: dict[HeadName, Head]
    training: dict[str, Any] = Field(default_factory=dict)
    """What it was trained on and with: dataset, problems, chains, roll-outs, settings."""

    @model_validator(mode="after")
    def _heads_read_the_features(self) -> VerifierFile:
        if not self.heads:
            raise ValueError("the file has no head")
        for name, head in self.heads.items():
            if head.inputs != self.features.dimensions:
                raise ValueError(
                    f"head {name!r} reads {head.inputs} features, the file's features have "
                    f"{self.features.dimensions}"
                )
        return self

    def head(self, name: HeadName) -> Head:
        if name not in self.heads:
            raise BadRequestError(
                f"mode {name!r}: the verifier file has no {name} head (it has "
                f"{', '.join(sorted(self.heads))}); train with labels.rollouts > 0 for a step head"
            )
        return self.heads[name]


def save_verifier(file: VerifierFile, path: Path) -> Path:
    """Write ``file`` to ``path`` (whole or not at all: through a temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        out.write(file.model_dump_json(indent=1))
    os.replace(staging, path)
    return path


def load_verifier(path: str | Path) -> VerifierFile:
    """The verifier file at ``path``; read again only when the file changed."""
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError:
        raise BadRequestError(
            f"path: no verifier file at {resolved}; `ponder verifier train DATASET` writes one"
        ) from None
    return _load(resolved, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int, size: int) -> VerifierFile:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequestError(f"path: {path} is not a verifier file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadRequestError(f"path: {path} is not a verifier file (no format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise BadRequestError(
            f"path: {path} is version {data.get('version')!r} of the verifier format; this "
            f"ponder reads version {VERSION}: train it again"
        )
    try:
        return VerifierFile.model_validate(data)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(f"verifier file {path}", exc)) from None
