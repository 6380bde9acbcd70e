"""The wire format: OpenAI's request and response shapes plus ponder's extensions.

Requests are validated here, once; every error names the field. ponder's own fields travel in
the request body (``extra_body`` in the official client): ``strategy``, ``budget``,
``reasoning_effort`` and ``trace``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ponder.core.problem import Message, Text, require_text

StrategyField = str | dict[str, Any]
"""A registry name (``"beam"``), ``"auto"``, or a config mapping with ``name`` (which may nest
other strategies' configs: a strategy graph)."""


class RequestBudget(BaseModel):
    """The limits a caller asks for. Unset fields get the operator's caps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_tokens: int | None = Field(None, gt=0, description="Tokens generated over all samples.")
    total_tokens: int | None = Field(None, gt=0, description="Prompt plus generated tokens, per call.")
    thinking_tokens: int | None = Field(
        None, gt=0,
        description="Tokens spent thinking. Thinking tokens are generated tokens, so it is "
        "enforced as a generated-token limit (the stricter of the two applies).",
    )
    latency_s: float | None = Field(None, gt=0, allow_inf_nan=False, description="Wall-clock seconds.")
    model_calls: int | None = Field(None, gt=0, description="Engine requests submitted.")
    verifier_calls: int | None = Field(None, gt=0, description="Scoring calls by verifiers.")


class TextPart(BaseModel):
    """One part of a message's content in OpenAI's list form; only text is understood."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """A chat turn; ``content`` is a string or a list of text parts (joined with newlines)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _not_blank(cls, content: str | list[TextPart]) -> str | list[TextPart]:
        """The problem's rule, on the text the parts join to, so it fails at the field."""
        require_text(_joined(content))
        return content

    def to_message(self) -> Message:
        return Message(role=self.role, content=_joined(self.content))


def _joined(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "\n".join(part.text for part in content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class _Request(BaseModel):
    """Fields both endpoints take."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] = Field(1, description="One answer per request: the strategy chooses it.")
    temperature: float | None = Field(None, ge=0.0, le=10.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, description="Most tokens per sampled chain.")
    seed: int | None = Field(None, ge=0, lt=2**63)
    user: str | None = None
    strategy: StrategyField | None = None
    budget: RequestBudget | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    trace: bool = Field(False, description="Add a compact trace: strategy, candidates, scores.")

    @property
    def sampling_overrides(self) -> dict[str, Any]:
        """The OpenAI sampling fields the caller set, for the strategy's ``sampling``."""
        fields = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        return {k: v for k, v in fields.items() if v is not None}


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="Same as max_tokens.")

    @model_validator(mode="after")
    def _one_max_tokens(self) -> ChatCompletionRequest:
        if self.max_completion_tokens is not None:
            if self.max_tokens is not None and self.max_tokens != self.max_completion_tokens:
                raise ValueError("give max_tokens or max_completion_tokens, not both")
            object.__setattr__(self, "max_tokens", self.max_completion_tokens)
        return self


class CompletionRequest(_Request):
    prompt: Text


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorBody
