"""Answer extraction: each method, their order, and a custom pattern."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.verifiers.answers import AnswerExtractor

DEFAULT_CASES = [
    ("boxed-nested-braces", r"so \boxed{\frac{1}{2}} is it", r"\frac{1}{2}"),
    ("boxed-last-wins", r"\boxed{3} no wait, \boxed{4}", "4"),
    ("fbox", r"\fbox{x^{2}}", "x^{2}"),
    ("boxed-cut-off-falls-back", r"\boxed{3} then \boxed{4", "3"),
    ("answer-is", "The answer is 42.", "42"),
    ("answer-in-dollars", "Answer: $42$", "42"),
    ("bold-marker", "**Answer:** 1,234", "1,234"),
    ("bold-marker-outside-colon", "**Final answer**: 7", "7"),
    ("last-marker-wins", "Answer: 3\nchecking...\nFinal answer: 5", "5"),
    ("answer-on-next-line", "Answer:\n  12\n", "12"),
    ("answer-with-unit", "Final answer: 17 apples", "17"),
    ("answer-expression", "answer: x + 1", "x + 1"),
    ("answer-with-inner-dollars", "Answer: $x$ or $y$", "$x$ or $y$"),
    ("answered-is-no-marker", "I answered the question and got 5", "5"),
    ("last-number-negative-decimal", "it fell to -3.5 and then x = -0.25.", "-0.25"),
    ("subtraction-is-not-a-sign", "so 10-3", "3"),
    ("thousands-separators", "a total of 1,500,000 people.", "1500000"),
    ("fraction", "half of it is 3/4", "3/4"),
    ("nothing", "no digits at all", None),
    ("empty", "", None),
]


@pytest.mark.parametrize(
    ("text", "answer"), [c[1:] for c in DEFAULT_CASES], ids=[c[0] for c in DEFAULT_CASES]
)
def test_default_methods(text: str, answer: str | None) -> None:
    assert AnswerExtractor().extract(text) == answer


def test_default_order_is_boxed_then_answer_line_then_last_number() -> None:
    extractor = AnswerExtractor()
    assert extractor.methods == ("boxed", "answer_line", "last_number")
    assert extractor.extract(r"Answer: 5, but really \boxed{6}. Also 7") == "6"
    assert extractor.extract("Answer: 5. Also 7") == "5"


def test_method_order_is_configurable() -> None:
    assert AnswerExtractor(methods=("answer_line", "boxed")).extract(r"\boxed{6}; Answer: 5") == "5"
    assert AnswerExtractor(methods=("boxed",)).extract("Answer: 5") is None


@pytest.mark.parametrize(
    ("pattern", "text", "answer"),
    [
        (r"#### (\S+)", "work... #### 18 and then #### 19", "19"),
        (r"\d+ apples", "3 pears and 12 apples", "12 apples"),
        (r"#### (\S+)", "no marker; Answer: 3", "3"),
    ],
    ids=["last-match-first-group", "whole-match-without-group", "falls-through-to-next-method"],
)
def test_custom_regex(pattern: str, text: str, answer: str) -> None:
    extractor = AnswerExtractor(methods=("regex", "answer_line"), regex=pattern)
    assert extractor.extract(text) == answer


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"regex": "(unclosed", "methods": ("regex",)}, "regex is not a valid regular expression"),
        ({"regex": r"(\d+)"}, "regex is set but methods does not include 'regex'"),
        ({"methods": ("regex",)}, "methods includes 'regex' but regex is not set"),
        ({"methods": ("boxed", "boxed")}, "methods must not repeat"),
        ({"methods": ()}, "methods"),
        ({"methods": ("first_number",)}, "methods"),
        ({"mode": "boxed"}, "mode"),
    ],
    ids=["bad-regex", "regex-not-in-methods", "regex-method-without-pattern", "repeated-method",
         "no-methods", "unknown-method", "unknown-field"],
)
def test_invalid_config_names_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AnswerExtractor(**fields)


def test_extractor_is_frozen() -> None:
    with pytest.raises(ValidationError):
        AnswerExtractor().methods = ("boxed",)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Answer: 17 + 32 = 49", "49"),
        ("Answer: x = 3", "3"),
        ("The answer is : 54", "54"),
        ('Answer: "50"', "50"),
        ("Answer: 5 because you can add 2 and 3", "5"),
        ("Answer: 12, because 6 times 2 is 12.", "12"),
        ("Answer: 3/4, since three of four", "3/4"),
        ("Answer: $3 each", "3"),
        ("Answer: 1,000", "1,000"),
        ("Answer: 3 + 4", "3 + 4"),
    ],
    ids=[
        "equation-right-side", "assignment", "stray-colon", "quoted", "number-then-reason",
        "number-comma-reason", "fraction-comma-reason", "currency-then-words", "thousands-kept",
        "expression-kept",
    ],
)
def test_answer_line_cleans_what_small_models_write(text: str, answer: str) -> None:
    assert AnswerExtractor().extract(text) == answer
