"""What the engine actually did: the one usage record every backend and result carries."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Usage:
    """Counts of work done. ``generated_tokens`` includes ``cancelled_tokens``: a cancelled
    sample's tokens were computed, so they are spent, even though no answer uses them."""

    prompt_tokens: int = 0
    """Prompt tokens the engine received (one prompt per call, however many samples)."""
    cached_prompt_tokens: int = 0
    """Of ``prompt_tokens``, those served from the prefix cache instead of recomputed."""
    generated_tokens: int = 0
    """Every generated token, finished or cancelled."""
    cancelled_tokens: int = 0
    """Of ``generated_tokens``, those of samples aborted before they finished."""
    thinking_tokens: int = 0
    """Of ``generated_tokens``, those spent thinking (before the answer), counted by strategies
    that know the model's thinking format; the rest are answer tokens."""
    model_calls: int = 0
    """Engine requests submitted (one request may carry n samples)."""
    verifier_calls: int = 0
    """Scoring calls made by verifiers that run a model or a program."""
    wall_seconds: float = 0.0
    """Elapsed time; for a sum over concurrent requests, the caller sets the span instead."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens

    @property
    def cache_hit_rate(self) -> float:
        """Fraction of prompt tokens served from the prefix cache (0 when there were none)."""
        return self.cached_prompt_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def add(self, other: Usage) -> None:
        """Accumulate ``other`` into this record in place."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __add__(self, other: Usage) -> Usage:
        total = Usage(**{f.name: getattr(self, f.name) for f in fields(self)})
        total.add(other)
        return total

    def to_dict(self) -> dict[str, float | int]:
        data: dict[str, float | int] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["total_tokens"] = self.total_tokens
        data["cache_hit_rate"] = round(self.cache_hit_rate, 4)
        return data
