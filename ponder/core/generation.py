"""The backend contract's data: what is asked of an engine and what comes back.

A request is a token-id prefix plus sampling parameters, so search can continue a parent
node from its ids without re-rendering and re-tokenizing text. What comes back is a
``GenerationState``: one mutable record per request that the backend fills in as tokens
stream, so a caller that stops early still holds everything produced so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ponder.core.usage import Usage

FinishReason = Literal["stop", "length", "aborted"]


class SamplingParams(BaseModel):
    """How to sample continuations. Validated once here; backends translate, never re-check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(1, ge=1, le=1024, description="Independent samples from the same prefix.")
    temperature: float = Field(0.8, ge=0.0, le=10.0, description="0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, ge=1, description="Most tokens generated per sample.")
    stop: tuple[str, ...] = Field((), description="Strings that end a sample (not included).")
    stop_token_ids: tuple[int, ...] = Field((), description="Token ids that end a sample.")
    include_stop_str_in_output: bool = Field(
        False, description="Keep the matched stop string at the end of the text (search steps)."
    )
    logprobs: int | None = Field(
        None, ge=0, le=20, description="Return the sampled token's logprob plus this many top ones."
    )
    seed: int | None = Field(None, description="Per-request seed where the backend honours it.")
    extra_args: dict[str, Any] | None = Field(
        None,
        description="Arguments for engine-side logits processors, keyed by processor (vLLM's "
        "SamplingParams.extra_args). A backend that does not run a named processor refuses "
        "the request rather than ignore it.",
    )

    @model_validator(mode="after")
    def _greedy_needs_one_sample(self) -> SamplingParams:
        if self.temperature == 0.0 and self.n > 1:
            raise ValueError(f"n must be 1 when temperature is 0 (greedy), got n={self.n}")
        return self


class GenerationRequest(BaseModel):
    """One engine submission: a prompt as token ids and how to continue it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_token_ids: tuple[int, ...] = Field(min_length=1)
    params: SamplingParams = SamplingParams()


@dataclass
class Completion:
    """One sample of a request, filled in as it streams."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    logprobs: list[float] | None = None
    """Logprob of each sampled token, when asked for."""
    top_logprobs: list[dict[int, float]] | None = None
    """Per position, the top candidates' logprobs by token id, when asked for."""
    finish_reason: FinishReason | None = None
    stop_reason: str | int | None = None
    """The stop string or token id that ended the sample, if one did."""

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class GenerationState:
    """Everything a request has produced so far; the final state is the request's result."""

    request: GenerationRequest
    completions: list[Completion]
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    started_at: float = field(default_factory=time.perf_counter)
    finished_at: float | None = None
    timed_out: bool = False
    """The caller's deadline cut the request short."""

    @classmethod
    def start(cls, request: GenerationRequest) -> GenerationState:
        return cls(
            request=request,
            completions=[Completion(index=i) for i in range(request.params.n)],
            prompt_tokens=len(request.prompt_token_ids),
        )

    @property
    def done(self) -> bool:
        return all(c.finished for c in self.completions)

    def abort_unfinished(self) -> None:
        """Mark every sample still running as aborted (the engine stopped it)."""
        for completion in self.completions:
            if completion.finish_reason is None:
                completion.finish_reason = "aborted"

    def close(self) -> None:
        self.finished_at = time.perf_counter()

    @property
    def usage(self) -> Usage:
        generated = sum(c.num_tokens for c in self.completions)
        cancelled = sum(c.num_tokens for c in self.completions if c.finish_reason == "aborted")
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return Usage(
            prompt_tokens=self.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens,
            generated_tokens=generated,
            cancelled_tokens=cancelled,
            model_calls=1,
            wall_seconds=end - self.started_at,
        )
