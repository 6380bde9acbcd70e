"""The generated arithmetic set: right answers, the promised shape per difficulty, and the
same problems for the same seed whatever the size."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from ponder.experiments.arithmetic import MAX_DIFFICULTY, arithmetic_problem, arithmetic_problems

_TOKEN = re.compile(r"\d+|[-+*/()]")


def evaluate(expression: str) -> Fraction:
    """The expression's exact value by the usual precedence (an evaluator of its own, so the
    test does not trust the generator's arithmetic)."""
    tokens = _TOKEN.findall(expression)
    position = 0

    def atom() -> Fraction:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            value = total()
            position += 1  # ")"
            return value
        return Fraction(int(token))

    def product() -> Fraction:
        nonlocal position
        value = atom()
        while position < len(tokens) and tokens[position] in "*/":
            operator = tokens[position]
            position += 1
            value = value * atom() if operator == "*" else value / atom()
        return value

    def total() -> Fraction:
        nonlocal position
        value = product()
        while position < len(tokens) and tokens[position] in "+-":
            operator = tokens[position]
            position += 1
            value = value + product() if operator == "+" else value - product()
        return value

    return total()


@pytest.mark.parametrize("difficulty", range(1, MAX_DIFFICULTY + 1))
def test_answers_are_the_exact_whole_value_of_the_expression(difficulty: int) -> None:
    for problem in arithmetic_problems(40, difficulty=difficulty, seed=3):
        expression = problem.question.removeprefix("What is ").removesuffix("?")
        value = evaluate(expression)
        assert value.denominator == 1 and value == problem.answer >= 0, problem


@pytest.mark.parametrize(
    ("difficulty", "operators", "digits"),
    [(1, {"+", "-"}, 1), (2, {"+", "-", "*"}, 1), (3, {"+", "-", "*"}, 2), (5, {"+", "-", "*", "/"}, 3)],
)
def test_difficulty_sets_operations_operators_and_digits(difficulty: int, operators: set[str], digits: int) -> None:
    problems = arithmetic_problems(200, difficulty=difficulty)
    seen: set[str] = set()
    for problem in problems:
        used = re.findall(r"[-+*/]", problem.question)
        assert len(used) == difficulty
        seen.update(used)
        # a product's or quotient's right operand is one digit; the other operands have `digits`
        operands = re.findall(r"(?<![*/] )\b\d+\b", problem.question)
        assert all(len(operand) == digits for operand in operands), problem.question
    assert seen == operators


def test_same_seed_same_problems_and_a_larger_set_extends_a_smaller_one() -> None:
    small = arithmetic_problems(10, difficulty=3, seed=7)
    large = arithmetic_problems(50, difficulty=3, seed=7)
    assert large[:10] == small
    assert arithmetic_problem(42, difficulty=3, seed=7) == large[42]
    assert len({p.id for p in large}) == 50
    assert arithmetic_problems(10, difficulty=3, seed=8) != small


@pytest.mark.parametrize("difficulty", [0, MAX_DIFFICULTY + 1])
def test_difficulty_out_of_range_is_refused(difficulty: int) -> None:
    with pytest.raises(ValueError, match="difficulty must be in"):
        arithmetic_problem(0, difficulty=difficulty)
