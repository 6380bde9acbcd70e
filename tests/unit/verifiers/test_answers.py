"""Answer extraction: each method, their order, and a custom pattern."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.verifiers.answers import AnswerExtractor


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"so \boxed{\frac{1}{2}} is it", r"\frac{1}{2}"),
        (r"\boxed{3} no wait \boxed{4}", "4"),
        (r"\fbox{x^{2}}", "x^{2}"),
        ("The answer is 42.", "42"),
        ("Answer: $42$", "42"),
        ("**Answer:** 1,234", "1,234"),
        ("Final answer: 17 apples", "17"),
        ("Answer: x + 1", "x + 1"),
        ("I answered the question and got 5", "5"),
        ("it fell to -3.5 then rose by 7.", "7"),
        ("a total of 1,500 people", "1500"),
        ("half is 3/4 of it", "3/4"),
        ("no digits at all", None),
        (r"unbalanced \boxed{12 and Answer: 13", "13"),
    ],
    ids=["boxed-nested", "boxed-last-wins", "fbox", "answer-is", "answer-dollars", "bold-marker",
         "answer-with-unit", "answer-expression", "answered-is-not-a-marker", "last-number",
         "thousands", "fraction", "nothing", "unbalanced-box-falls-through"],
)
def test_default_order(text: str, answer: str | None) -> None:
    assert AnswerExtractor().extract(text) == answer


def test_boxed_beats_an_answer_line_by_default() -> None:
    assert AnswerExtractor().extract(r"Answer: 5 but really \boxed{6}") == "6"


def test_method_order_is_configurable() -> None:
    extractor = AnswerExtractor(methods=("answer_line", "boxed"))
    assert extractor.extract(r"\boxed{6} then Answer: 5") == "5"
    assert AnswerExtractor(methods=("boxed",)).extract("Answer: 5") is None


def test_custom_regex_comes_first_and_uses_its_group() -> None:
    extractor = AnswerExtractor(regex=r"#### (\S+)")
    assert extractor.extract("work... #### 18 and Answer: 3") == "18"
    assert extractor.extract("no marker, Answer: 3") == "3"


def test_a_regex_that_does_not_compile_names_the_field() -> None:
    with pytest.raises(ValidationError, match="regex"):
        AnswerExtractor(regex="(unclosed")


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValidationError, match="methods"):
        AnswerExtractor(methods=("first_number",))
