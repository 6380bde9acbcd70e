"""How a strategy samples its chains: the settings every strategy, search and verifier shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SamplingConfig(BaseModel):
    """How each chain is sampled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=10.0, description="0 means greedy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(256, ge=1, description="Most tokens per chain.")
    stop: tuple[str, ...] = Field((), description="Strings that end a chain.")
