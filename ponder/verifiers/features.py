"""A learned verifier's features: a path's embedding, the hidden state of a model that has
read the problem and the path, from vLLM's pooling runner.

Training (``ponder verifier train``) and scoring (the ``learned`` verifier) embed through this
one module, so a path is turned into features the same way in both: the problem rendered with
the feature model's chat template (assistant turn opened), then the path's steps joined by the
step delimiter, as token ids; LAST pooling reads the final token's hidden state, MEAN the
average over the prompt. A middle layer (``layer``) runs a copy of the model cut after that
many decoder layers (``ponder.models.truncated``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ponder.core.pooling import EmbeddingPooling, PoolingClient, PoolingEngineSettings
from ponder.core.problem import Problem
from ponder.models.registry import resolve_model
from ponder.models.truncated import truncated_model
from ponder.runtime import Run
from ponder.verifiers.base import pool_within_budget
from ponder.verifiers.prm import load_tokenizer


class FeatureSpec(BaseModel):
    """Which hidden states a path's features are: the same spec at training and scoring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(
        "embedded", description="The feature model: 'embedded', a local HF folder, or a hub name."
    )
    layer: int | None = Field(
        None, ge=1, description="Read the hidden state after this many decoder layers (a copy "
        "of the model cut there); None: after the last."
    )
    pooling: EmbeddingPooling = Field(
        "LAST", description="LAST: the final token's hidden state; MEAN: the prompt's average."
    )
    system_prompt: str | None = Field(
        None, description="A system turn before the problem in the feature prompt (None: none)."
    )
    step_delimiter: str = Field("\n\n", min_length=1, description="What separates steps.")

    def describe(self) -> str:
        layer = "the last layer" if self.layer is None else f"layer {self.layer}"
        return f"model {self.model!r}, {layer}, {self.pooling} pooling"


def model_fingerprint(model: str) -> str:
    """What identifies the weights a name resolves to: for a local folder, a hash of its
    config and its weight files' names and sizes (so a folder renamed or moved still matches
    and one retrained does not); for a hub name, the name."""
    path = Path(resolve_model(model))
    if not path.is_dir():
        return f"hub:{model}"
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def pooling_settings(spec: FeatureSpec, max_model_len: int, gpu_share: float) -> PoolingEngineSettings:
    """The embedding engine for ``spec``, built once per settings by the engine pool."""
    path = resolve_model(spec.model)
    if spec.layer is not None:
        path = truncated_model(path, spec.layer)
    return PoolingEngineSettings(path, None, max_model_len, gpu_share, embedding=spec.pooling)


def path_text(steps: Sequence[str], delimiter: str) -> str:
    """A path as the feature prompt holds it: its steps joined by the delimiter."""
    return delimiter.join(steps)


@dataclass(frozen=True)
class Embedder:
    """A feature model's tokenizer and embedding client, and the spec they follow."""

    spec: FeatureSpec
    client: PoolingClient
    tokenizer: Any

    @classmethod
    async def connect(
        cls, spec: FeatureSpec, ctx: Run, *, max_model_len: int, gpu_share: float
    ) -> Embedder:
        """The embedding engine from the run's pool (started on first use)."""
        settings = pooling_settings(spec, max_model_len, gpu_share)
        tokenizer = load_tokenizer(resolve_model(spec.model))
        return cls(spec, await ctx.pool.pooling(settings), tokenizer)

    def prompt(self, problem: Problem, text: str) -> list[int]:
        chat = self.tokenizer.apply_chat_template(
            problem.chat(self.spec.system_prompt), tokenize=False, add_generation_prompt=True
        )
        encode = self.tokenizer.encode
        return encode(chat, add_special_tokens=False) + encode(text, add_special_tokens=False)

    async def embed(
        self, items: Sequence[tuple[Problem, str]], ctx: Run
    ) -> list[np.ndarray | str]:
        """Per (problem, path text), its feature vector, or why it has none (too long for
        the engine). All sent at once. Raises ``BudgetExhaustedError`` or ``TimeoutError``
        when the budget cannot pay for the prompts' tokens."""
        prompts = [self.prompt(problem, text) for problem, text in items]
        limit = self.client.max_model_len
        sent = [p for p in prompts if len(p) <= limit]
        pooled = iter(await pool_within_budget(ctx, self.client, sent))
        results: list[np.ndarray | str] = []
        for prompt in prompts:
            if len(prompt) > limit:
                results.append(f"the feature prompt is {len(prompt)} tokens; max_model_len is {limit}")
            else:
                results.append(np.asarray(next(pooled).rows[0], dtype=np.float32))
        return results
