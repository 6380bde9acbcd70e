"""``Budget``: the limits one request may spend, as a single immutable value.

The same limits mean the same thing in every strategy: a ``Ledger`` enforces them, so no
algorithm invents its own notion of "budget".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

LIMITS = ("generated_tokens", "total_tokens", "model_calls", "verifier_calls", "seconds")
"""Every limit a budget can set, in the order ledgers check them."""


class Budget(BaseModel):
    """Limits on the work of one request. Every field is optional; ``None`` means no limit.

    ``Budget(generated_tokens=4000, seconds=30)`` allows 4000 generated tokens within 30 s.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_tokens: int | None = Field(
        None, description="Tokens generated over all samples, cancelled samples included."
    )
    total_tokens: int | None = Field(
        None, description="Prompt plus generated tokens; a prompt counts once per model call."
    )
    model_calls: int | None = Field(
        None, description="Engine requests submitted (one request may carry n samples)."
    )
    verifier_calls: int | None = Field(
        None, description="Scoring calls by verifiers that run a model or a program."
    )
    seconds: float | None = Field(
        None, allow_inf_nan=False, description="Wall-clock seconds from when a ledger opens."
    )

    @field_validator("*")
    @classmethod
    def _positive(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and value <= 0:
            raise ValueError(f"{info.field_name} must be > 0, got {value}")
        return value

    @classmethod
    def unlimited(cls) -> Budget:
        """A budget with no limits (a ledger over it only records usage)."""
        return cls()

    def __repr_args__(self) -> Any:
        """Show only the limits that are set: ``Budget(generated_tokens=4000)``."""
        return [(name, value) for name, value in super().__repr_args__() if value is not None]
