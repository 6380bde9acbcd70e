"""A model's reasoning format, as configuration: where thinking starts and ends, how a thought
segment ends, and how the final answer is introduced.

R1-style and Qwen3 models think between ``<think>`` and ``</think>``. A model with no thinking
mode (the embedded SmolLM2) plays the same role with a prompt that asks for reasoning
followed by "Answer:": everything before the answer line is the thinking. Strategies that
work on long chains (budget forcing, CoT trimming, speculative reasoning) read the markers
from here, and usage splits generated tokens into thinking and answer with ``split_tokens``.

A marker that never appears is not an error: the whole text is then thinking (a chain that
never closed its thoughts has not answered yet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ponder.errors import UnknownNameError


class ThinkingFormat(BaseModel):
    """The markers of one reasoning format. Build from a preset name (``"plain"``, ``"r1"``,
    ``"qwen3"``) or field by field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("plain", description="A label for reports.")
    think_start: str | None = Field(
        None, description="Opens thinking (None: thinking starts with the output)."
    )
    think_end: str = Field(
        "Answer:", min_length=1, description="Closes thinking; what follows is the answer."
    )
    answer_prompt: str = Field(
        "\nAnswer:",
        min_length=1,
        description="Appended to a chain to close its thinking and make it answer now.",
    )
    segment_end: str = Field(
        "\n\n", min_length=1, description="Ends one thought segment (a reasoning step)."
    )
    segment_markers: tuple[str, ...] = Field(
        ("Wait", "Alternatively", "Hmm", "But wait"),
        description="Words that open a new thought: the model reconsidering.",
    )
    continuation: str = Field(
        "Wait", min_length=1, description="Appended to keep a chain thinking (budget forcing)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, data: Any) -> Any:
        """A bare string names a preset, so configs can say ``thinking: r1``."""
        if isinstance(data, str):
            return dict(thinking_format(data))
        return data

    @model_validator(mode="after")
    def _answer_prompt_closes_thinking(self) -> ThinkingFormat:
        if self.think_end not in self.answer_prompt:
            raise ValueError(
                f"answer_prompt must contain think_end {self.think_end!r} so that forcing the "
                f"answer closes the thinking, got {self.answer_prompt!r}"
            )
        return self

    def thinking_end(self, text: str) -> int | None:
        """Index in ``text`` where thinking ends (the start of ``think_end``), or None."""
        at = text.find(self.think_end)
        return at if at >= 0 else None

    def split(self, text: str) -> tuple[str, str]:
        """(thinking, answer). The answer starts at ``think_end``; with no ``think_end``
        everything is thinking. A leading ``think_start`` is dropped from the thinking."""
        end = self.thinking_end(text)
        thinking, answer = (text, "") if end is None else (text[:end], text[end:])
        if self.think_start and thinking.lstrip().startswith(self.think_start):
            thinking = thinking.lstrip()[len(self.think_start):]
        return thinking, answer

    def split_tokens(self, token_ids: Sequence[int], decode: Callable[[Sequence[int]], str]) -> int:
        """How many of ``token_ids`` are thinking: those that decode to text before
        ``think_end`` (all of them when it never appears). A binary search over decoded
        prefixes, so a token that straddles the marker counts as answer."""
        end = self.thinking_end(decode(token_ids))
        if end is None:
            return len(token_ids)
        low, high = 0, len(token_ids)  # the most tokens whose text stays within the thinking
        while low < high:
            middle = (low + high + 1) // 2
            if len(decode(token_ids[:middle])) <= end:
                low = middle
            else:
                high = middle - 1
        return low

    def is_hedging(self, text: str) -> bool:
        """True when ``text`` reconsiders (contains a segment marker): not a settled answer."""
        lowered = text.lower()
        return any(marker.lower() in lowered for marker in self.segment_markers)


_PRESETS: dict[str, dict[str, Any]] = {
    "plain": {},
    "r1": {
        "name": "r1",
        "think_start": "<think>",
        "think_end": "</think>",
        "answer_prompt": "\n</think>\n\n",
    },
    "qwen3": {
        "name": "qwen3",
        "think_start": "<think>",
        "think_end": "</think>",
        "answer_prompt": "\n</think>\n\n",
    },
}


def thinking_format(name: str) -> dict[str, Any]:
    """The fields of a preset format, by name."""
    if name not in _PRESETS:
        raise UnknownNameError("thinking format", name, list(_PRESETS))
    return {"name": name, **_PRESETS[name]}
