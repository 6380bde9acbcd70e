"""A problem to solve: chat messages or a bare prompt, and optionally its reference answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ponder.errors import BLANK_TEXT

DEFAULT_SYSTEM_PROMPT = "Answer the question. End with 'Answer: <final answer>'."
"""Short on purpose: small models follow a short instruction more often than a long one. Kept
here, below strategies and verifiers, because a verifier that continues a chain (self_eval)
must render the prompt the chain was sampled with."""


def require_text(text: str) -> str:
    """The one rule for what a user writes (a prompt, a message's content), shared by the
    Python API, the command line and the server: text that is empty or only whitespace asks
    nothing, so it is refused rather than answered."""
    if not text.strip():
        raise PydanticCustomError(BLANK_TEXT, "must not be empty or only whitespace")
    return text


Text = Annotated[str, AfterValidator(require_text)]
"""A string field under ``require_text``'s rule."""


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: Text


class Problem(BaseModel):
    """What the user asks. Exactly one of ``prompt`` and ``messages`` is given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: Text | None = Field(None, description="A single user turn.")
    messages: tuple[Message, ...] | None = Field(None, description="A whole chat.")
    reference: str | None = Field(None, description="The known right answer, for grading.")
    tests: tuple[str, ...] = Field(
        (), description="For code problems: Python test snippets (asserts) a candidate must pass."
    )
    id: str | None = Field(None, description="A name for this problem in datasets and logs.")

    @model_validator(mode="after")
    def _one_input(self) -> Problem:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt and messages")
        if self.messages is not None and not any(m.role == "user" for m in self.messages):
            raise ValueError("messages must contain at least one user message")
        return self

    @classmethod
    def coerce(cls, value: str | Problem | dict) -> Problem:
        """Accept what the API takes: a prompt string, a Problem, or its fields as a dict."""
        if isinstance(value, Problem):
            return value
        if isinstance(value, str):
            return cls(prompt=value)
        return cls.model_validate(value)

    def chat(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        """The conversation to render, with ``system_prompt`` first unless one is present."""
        turns = list(self.messages) if self.messages else [Message(role="user", content=self.prompt or "")]
        if system_prompt and turns[0].role != "system":
            turns.insert(0, Message(role="system", content=system_prompt))
        return [m.model_dump() for m in turns]
