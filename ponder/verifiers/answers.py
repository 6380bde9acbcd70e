"""Answer extraction: pull the final answer out of a model's reasoning text.

Voting and grading compare answers, not whole chains, so every candidate first goes through
an ``AnswerExtractor``. Each method looks for the *last* occurrence of its pattern, because a
chain may state intermediate results before it commits to the final one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Method = Literal["boxed", "answer_line", "last_number", "regex"]

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_MARKER = re.compile(
    r"\b(?:final\s+answer|answer)\s*(?:\*\*|__)?\s*(?::|\bis\b)(?:\s*(?:\*\*|__))?",
    re.IGNORECASE,
)
# A minus sign counts only where it cannot be a subtraction ("x=-3", not "5-3").
_NUMBER = re.compile(
    r"(?<![\w.])(?:(?<![\w)\]}])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+)?"
)
_WRAPPERS = ("**", "__", "$", "*", '"', "'")
_SENTENCE_END = re.compile(r"\.\s")
_NUMBER_THEN_WORDS = re.compile(r"\$?(-?[\d,]*\d(?:\.\d+)?(?:/\d+)?)(?:\s*,\s*|\s+)[A-Za-z]")


def matching_brace(text: str, start: int) -> int | None:
    """Position of the ``}`` closing the brace opened just before ``start``; None if unclosed."""
    depth = 1
    for pos in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        if depth == 0:
            return pos
    return None


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` whose braces close (a
    chain cut off inside a box falls back to the box before it)."""
    for match in reversed(list(_BOXED.finditer(text))):
        end = matching_brace(text, match.end())
        if end is not None:
            return text[match.end() : end]
    return None


def _answer_line(text: str) -> str | None:
    """The rest of the sentence after the last "Answer:" / "answer is" / "Final answer:"
    marker, unwrapped; of an equation its right-hand side ("3 + 4 = 7" gives "7"); of a
    number followed by words ("17 apples", "5 because ...", "12, since ...", "$3 each")
    only the number."""
    markers = list(_ANSWER_MARKER.finditer(text))
    if not markers:
        return None
    rest = text[markers[-1].end() :].strip()
    line = _SENTENCE_END.split(rest.splitlines()[0])[0] if rest else ""
    previous = None
    while line != previous:
        previous = line
        line = line.strip().lstrip(":").rstrip(".").strip()
        for wrapper in _WRAPPERS:
            inner = line[len(wrapper) : -len(wrapper)]
            wrapped = line.startswith(wrapper) and line.endswith(wrapper)
            if wrapped and inner and wrapper not in inner:
                line = inner
    line = line.rsplit("=", 1)[-1].strip()
    with_unit = _NUMBER_THEN_WORDS.match(line)
    return with_unit.group(1) if with_unit else line


def _last_number(text: str) -> str | None:
    """The last integer, decimal or fraction, with thousands separators removed."""
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


_METHODS: dict[str, Callable[[str], str | None]] = {
    "boxed": _boxed,
    "answer_line": _answer_line,
    "last_number": _last_number,
}


class AnswerExtractor(BaseModel):
    """Finds a chain's final answer by trying methods in order; the first hit wins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: tuple[Method, ...] = Field(
        ("boxed", "answer_line", "last_number"),
        min_length=1,
        description="Methods to try, in order. 'regex' uses the ``regex`` pattern.",
    )
    regex: str | None = Field(
        None,
        description="A pattern for the 'regex' method; its last match gives the answer "
        "(the first capture group if the pattern has one, else the whole match).",
    )

    @field_validator("methods")
    @classmethod
    def _no_repeats(cls, value: tuple[Method, ...]) -> tuple[Method, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"methods must not repeat a method, got {list(value)}")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"regex is not a valid regular expression: {err}") from err
        return value

    @model_validator(mode="after")
    def _regex_matches_methods(self) -> AnswerExtractor:
        if "regex" in self.methods and self.regex is None:
            raise ValueError("methods includes 'regex' but regex is not set; give a pattern")
        if self.regex is not None and "regex" not in self.methods:
            raise ValueError(
                "regex is set but methods does not include 'regex'; add it where it should "
                "be tried, e.g. methods=('regex', 'boxed', 'answer_line', 'last_number')"
            )
        return self

    def extract(self, text: str) -> str | None:
        """The first non-empty answer any method finds, stripped; None when none finds one."""
        for method in self.methods:
            found = self._regex(text) if method == "regex" else _METHODS[method](text)
            if found is not None and found.strip():
                return found.strip()
        return None

    def _regex(self, text: str) -> str | None:
        matches = list(re.finditer(self.regex or "", text))
        if not matches:
            return None
        last = matches[-1]
        return last.group(1) if last.re.groups else last.group(0)
