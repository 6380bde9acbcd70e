"""What the operator sets for one server: the model name it answers to, API keys, caps."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ponder.server.schemas import RequestBudget, StrategyField


class ServerSettings(BaseModel):
    """One frozen value per server; no request changes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = Field("ponder", min_length=1, description="The id /v1/models lists.")
    api_keys: tuple[str, ...] = Field(
        (), description="Bearer keys accepted on /v1/*; empty means no authentication."
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body.")
    max_prompt_tokens: int = Field(
        1536, ge=1, description="Longest rendered prompt (chat template and system prompt included)."
    )
    caps: RequestBudget = Field(
        RequestBudget(generated_tokens=32768, latency_s=300, model_calls=1024),
        description="The most a request may ask for; also the budget of requests that set none.",
    )
    per_key_concurrency: int = Field(
        64, ge=1, description="Requests one API key may have in flight; more are refused (429)."
    )
    default_strategy: StrategyField = Field(
        "self_consistency", description="For requests that name no strategy or effort."
    )
    profiles: Path | None = Field(
        None, description="Accuracy-vs-tokens profiles for strategy 'auto' (None: the shipped one)."
    )
    force_profile: bool = Field(
        False, description="Use the profiles even when they were made for another model than "
        "the backend's."
    )
    max_restarts: int = Field(
        5, ge=0, description="Engine restarts allowed within restart_window_s; after that the "
        "server stays unavailable (503) until it is restarted itself.",
    )
    restart_window_s: float = Field(
        600.0, gt=0, description="The window max_restarts counts in: an engine that served this "
        "long since the last restart starts the count afresh.",
    )
    restart_backoff_s: float = Field(
        1.0, ge=0, description="Wait before the first restart; doubled for each further one in "
        "the window, up to restart_backoff_max_s.",
    )
    restart_backoff_max_s: float = Field(30.0, ge=0, description="Longest wait before a restart.")
