"""What a pooling verifier asks of a pooling client, as plain data: the settings the engine
pool builds one from, the client's shape, and what it returns. Two tasks run there: a process
reward model's step classification and a learned verifier's embeddings. The clients
themselves (an in-process engine, a server's endpoint) are in ``ponder.backends.pooling``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

EmbeddingPooling = Literal["LAST", "MEAN"]
"""How an embedding engine pools a prompt's hidden states into one vector: the last token's
(which has read the whole prompt, in a causal LM) or the mean over every token."""


@dataclass(frozen=True)
class Pooled:
    rows: list[list[float]]
    """Class logits, one row per separator token (or per token) of the prompt; for an
    embedding, one row: the pooled hidden state."""
    prompt_tokens: int
    cached_prompt_tokens: int = 0


class PoolingClient(Protocol):
    max_model_len: int

    @property
    def alive(self) -> bool:
        """False once closed or dead: the pool then builds a new one."""
        ...

    async def pool(self, prompts: list[list[int]], separator_id: int | None) -> list[Pooled]:
        """Class logits at ``separator_id`` (an embedding engine takes None) for every
        prompt, all submitted at once."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class PoolingEngineSettings:
    """What makes one in-process pooling engine differ from another."""

    model_path: str
    classifier_tokens: tuple[str, str] | None
    """Two vocabulary entries whose LM-head rows become a 2-class head (a causal LM without a
    PRM head); None for a model with its own head."""
    max_model_len: int
    gpu_memory_utilization: float
    embedding: EmbeddingPooling | None = None
    """Set for an embedding engine (a learned verifier's features): one pooled hidden state
    per prompt; None for step classification (a PRM)."""


@dataclass(frozen=True)
class PoolingServerSettings:
    base_url: str
    """The server root, e.g. http://localhost:8000 (not .../v1)."""
    max_model_len: int
    """Longest prompt sent; the server's own context length, as far as the caller knows."""


PoolingSettings = PoolingEngineSettings | PoolingServerSettings
