"""A verifier learned from labelled outcomes: a small head over a model's hidden states.

``ponder verifier train`` samples chains on problems with references, labels them (each
chain by its grade; each step by Monte Carlo roll-outs from it) and fits a head on their
embeddings; this verifier loads that file and scores paths the same way: embed each path
through the run's pooling engine (``ponder.verifiers.features``), apply the head.

``mode: outcome`` scores a whole path with the outcome head (for best-of-N); ``mode: step``
scores every step prefix with the step head and aggregates them (a step scorer for beam,
DVTS, A*, particle filtering). All paths (and all their prefixes) go to the engine in one
submission; each path costs one verifier call and its prompt tokens.

A file trained on another feature model or layer is refused before anything is scored:
features from other weights are other numbers, and the head would score noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.errors import BadRequestError, BudgetExhaustedError
from ponder.runtime import Run
from ponder.verifiers.base import Score, verifiers
from ponder.verifiers.features import Embedder, model_fingerprint, path_text
from ponder.verifiers.heads import Head, HeadName, VerifierFile, load_verifier
from ponder.verifiers.process import ProcessVerifier, split_steps


@verifiers.register("learned")
class LearnedVerifier(ProcessVerifier):
    """Scores paths with a head trained by ``ponder verifier train``."""

    path: str = Field(min_length=1, description="The verifier file `ponder verifier train` wrote.")
    mode: HeadName = Field(
        "outcome", description="outcome: one score per whole path (best-of-N); step: a score "
        "per step prefix, aggregated (a step scorer for the searches)."
    )
    model: str | None = Field(
        None, description="The feature model to embed with; None: the file's. Another model "
        "than the one the file was trained on is refused."
    )
    layer: int | None = Field(
        None, ge=1, description="The layer the file must read; None: whichever it reads. A file "
        "trained on another layer is refused."
    )
    max_model_len: int = Field(
        2048, ge=16, description="Longest feature prompt (problem and path); longer paths get "
        "no score. Also the embedding engine's context length."
    )
    gpu_memory_utilization: float = Field(
        0.1, gt=0.0, le=1.0, description="On a GPU: the embedding engine's share of its memory."
    )

    @model_validator(mode="after")
    def _file_fits(self) -> LearnedVerifier:
        file = self.file()
        features = file.features
        file.head(self.mode)  # refuses a mode the file has no head for
        if self.model is not None and self.model != features.model:
            try:
                same = model_fingerprint(self.model) == features.fingerprint
            except BadRequestError:
                same = False
            if not same:
                raise ValueError(
                    f"model {self.model!r} is not the feature model this verifier file was "
                    f"trained on ({features.describe()}); train one for it"
                )
        if self.layer is not None and self.layer != features.layer:
            raise ValueError(
                f"layer {self.layer}: this verifier file was trained on features of "
                f"{features.describe()}; train one on layer {self.layer}"
            )
        if self.step_delimiter != features.step_delimiter:
            raise ValueError(
                f"step_delimiter {self.step_delimiter!r}: the file's steps were split at "
                f"{features.step_delimiter!r}"
            )
        return self

    def file(self) -> VerifierFile:
        return load_verifier(self.path)

    async def connect(self, ctx: Run) -> Embedder:
        """The embedding engine for the file's features, after checking that the feature
        model still holds the weights the file was trained on."""
        features = self.file().features
        spec = features.spec()
        if self.model is not None:
            spec = spec.model_copy(update={"model": self.model})
        if model_fingerprint(spec.model) != features.fingerprint:
            raise BadRequestError(
                f"path: the verifier file {self.path} was trained on features of "
                f"{features.describe()}, and {spec.model!r} now holds other weights; train it again"
            )
        return await Embedder.connect(
            spec, ctx, max_model_len=self.max_model_len, gpu_share=self.gpu_memory_utilization
        )

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        if self.mode == "step":
            return await super()._score(problem, candidates, ctx)
        paths = [split_steps(c.text, self.step_delimiter) for c in candidates]
        per_path = await self._predict(problem, [[p] if p else [] for p in paths], ctx, "outcome")
        # one text per path: a path whose text has no score is a Score(None, reason) already
        return [s if isinstance(s, Score) else Score(s[0]) for s in per_path]

    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: Run
    ) -> list[list[float | None] | Score]:
        prefixes = [[steps[: i + 1] for i in range(len(steps))] for steps in paths]
        return await self._predict(problem, prefixes, ctx, "step")

    async def _predict(
        self, problem: Problem, paths: list[list[list[str]]], ctx: Run, name: HeadName
    ) -> list[list[float | None] | Score]:
        """Per path, the head's P(correct) for each of its texts (given as step lists), all
        embedded in one submission; a ``Score(None, reason)`` for a path with no text or
        when the budget cannot pay."""
        head = self.file().head(name)
        embedder = await self.connect(ctx)
        texts = [path_text(steps, self.step_delimiter) for path in paths for steps in path]
        try:
            vectors = await embedder.embed([(problem, text) for text in texts], ctx)
        except BudgetExhaustedError as exc:
            return [Score(None, f"not scored: {exc}")] * len(paths)
        except TimeoutError:
            return [Score(None, "not scored: the budget's time ran out")] * len(paths)
        scored = iter(zip(vectors, _apply(head, vectors)))
        results: list[list[float | None] | Score] = []
        for path in paths:
            if not path:
                results.append(Score(None, "the path has no steps"))
                continue
            pairs = [next(scored) for _ in path]
            probabilities = [p for _, p in pairs]
            if all(p is None for p in probabilities):  # each None has its reason
                results.append(Score(None, next(v for v, _ in pairs if isinstance(v, str))))
            else:
                results.append(probabilities)
        return results


def _apply(head: Head, vectors: list[np.ndarray | str]) -> list[float | None]:
    """The head's probability for every vector (None where there is a reason instead)."""
    rows = [v for v in vectors if not isinstance(v, str)]
    if rows and rows[0].shape[0] != head.inputs:
        raise BadRequestError(
            f"the feature model gives {rows[0].shape[0]} features, the verifier file's head "
            f"reads {head.inputs}: the file was made for another model"
        )
    predicted = iter(head.predict(np.stack(rows)).tolist() if rows else [])
    return [None if isinstance(v, str) else next(predicted) for v in vectors]
