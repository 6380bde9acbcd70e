"""Find the final answer in a chain of reasoning.

Models state answers in a few common ways: LaTeX ``\\boxed{...}``, a closing "Answer: ..."
line, or just a last number. ``AnswerExtractor`` tries configured methods in order and
returns the first hit, trimmed of formatting that carries no meaning (``$``, ``**``, a
trailing period), so equal answers compare equal as strings more often.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Method = Literal["boxed", "answer_line", "last_number"]

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_MARKER = re.compile(
    r"\b(?:final answer|the answer is|answer is|answer)\b\s*(?:is)?\s*[:=]?", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?")
_NUMBER_THEN_WORDS = re.compile(r"^(-?[\d,]*\d(?:\.\d+)?)\s+[A-Za-z][A-Za-z\s]*$")
"""An answer such as "42 apples": the number is the answer, the words its unit."""
_DECORATION = " \t*$`.\"'"


class AnswerExtractor(BaseModel):
    """Extracts a final answer from text by the first method that finds one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: tuple[Method, ...] = Field(
        ("boxed", "answer_line", "last_number"), description="Methods tried in this order."
    )
    regex: str | None = Field(
        None,
        description="A pattern tried before the methods; its first group (or the whole match) "
        "of the last match is the answer.",
    )

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value

    def extract(self, text: str) -> str | None:
        if self.regex is not None:
            found = _last_regex_match(self.regex, text)
            if found:
                return found
        for method in self.methods:
            found = _METHODS[method](text)
            if found:
                return found
        return None


def _last_regex_match(pattern: str, text: str) -> str | None:
    matches = list(re.finditer(pattern, text))
    if not matches:
        return None
    last = matches[-1]
    return _clean(last.group(1) if last.groups() else last.group(0))


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, with nested braces balanced."""
    starts = list(_BOXED.finditer(text))
    for start in reversed(starts):
        depth, position = 1, start.end()
        while position < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        if depth == 0:
            return _clean(text[start.end() : position - 1])
    return None


def _answer_line(text: str) -> str | None:
    """What follows the last "Answer:" style marker, up to the end of its line."""
    markers = list(_ANSWER_MARKER.finditer(text))
    for marker in reversed(markers):
        rest = text[marker.end() :].split("\n", 1)[0]
        cleaned = _clean(rest)
        if cleaned:
            with_unit = _NUMBER_THEN_WORDS.match(cleaned)
            return with_unit.group(1).replace(",", "") if with_unit else cleaned
    return None


def _last_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def _clean(answer: str) -> str:
    answer = answer.strip().strip(_DECORATION).strip()
    return answer.replace("\\$", "").strip()


_METHODS = {"boxed": _boxed, "answer_line": _answer_line, "last_number": _last_number}
