"""Generated arithmetic problems: as many as asked, at a chosen difficulty, the same ones for
the same seed, so a run works anywhere without a data set.

Difficulty ``d`` sets the shape: ``d`` operations over operands of ``(d + 1) // 2`` digits;
``+`` and ``-`` at 1, ``*`` from 2, exact ``/`` from 4. A product or quotient always has a
one-digit right operand (2 to 9), so answers grow with ``d`` but stay readable. No result,
intermediate or final, is negative: a subtraction takes the larger side first.

Problem ``i`` depends only on ``(seed, difficulty, i)``: a larger set extends a smaller one,
which keeps runs resumable and sweeps over ``size`` comparable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from operator import add, floordiv, mul, sub

MAX_DIFFICULTY = 10
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_APPLY = {"+": add, "-": sub, "*": mul, "/": floordiv}
"""Division is exact by construction, so floor division loses nothing."""
_DIVISION_TRIES = 50
"""Draws of a left side divisible by the divisor before the division becomes a product."""


@dataclass(frozen=True)
class ArithmeticProblem:
    id: str
    question: str
    answer: int


@dataclass(frozen=True)
class _Expr:
    text: str
    value: int
    operator: str | None = None
    """The outermost operator (None for a number), to place parentheses."""


def _operators(difficulty: int) -> tuple[str, ...]:
    return ("+", "-", "*", "/")[: 2 + (difficulty >= 2) + (difficulty >= 4)]


def _operand(rng: random.Random, digits: int) -> _Expr:
    low = 1 if digits == 1 else 10 ** (digits - 1)
    value = rng.randint(low, 10**digits - 1)
    return _Expr(str(value), value)


def _wrap(child: _Expr, operator: str, right: bool) -> str:
    """The child's text, in parentheses where precedence (or being the right side of - or /)
    needs them."""
    if child.operator is None:
        return child.text
    looser = _PRECEDENCE[child.operator] < _PRECEDENCE[operator]
    same_on_right = right and _PRECEDENCE[child.operator] == _PRECEDENCE[operator]
    return f"({child.text})" if looser or same_on_right else child.text


def _combine(left: _Expr, operator: str, right: _Expr) -> _Expr:
    if operator == "-" and left.value < right.value:
        left, right = right, left
    value = _APPLY[operator](left.value, right.value)
    text = f"{_wrap(left, operator, False)} {operator} {_wrap(right, operator, True)}"
    return _Expr(text, value, operator)


def _expression(
    rng: random.Random, operations: int, digits: int, operators: tuple[str, ...]
) -> _Expr:
    """A random expression tree with ``operations`` operators."""
    if operations == 0:
        return _operand(rng, digits)
    operator = rng.choice(operators)
    if operator in "*/":  # the right side is one small factor; the rest goes left
        factor = rng.randint(2, 9)
        divisor = _Expr(str(factor), factor)
        for _ in range(_DIVISION_TRIES if operator == "/" else 1):
            left = _expression(rng, operations - 1, digits, operators)
            if operator == "*" or left.value % factor == 0:
                return _combine(left, operator, divisor)
        return _combine(left, "*", divisor)
    split = rng.randint(0, operations - 1)
    left = _expression(rng, split, digits, operators)
    right = _expression(rng, operations - 1 - split, digits, operators)
    return _combine(left, operator, right)


def arithmetic_problem(index: int, *, difficulty: int = 1, seed: int = 0) -> ArithmeticProblem:
    """Problem ``index`` of the set for ``(seed, difficulty)``."""
    if not 1 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be in [1, {MAX_DIFFICULTY}], got {difficulty}")
    rng = random.Random(f"arithmetic:{seed}:{difficulty}:{index}")
    expr = _expression(rng, difficulty, (difficulty + 1) // 2, _operators(difficulty))
    return ArithmeticProblem(
        id=f"arithmetic-d{difficulty}-s{seed}-{index}",
        question=f"What is {expr.text}?",
        answer=expr.value,
    )


def arithmetic_problems(
    size: int, *, difficulty: int = 1, seed: int = 0
) -> list[ArithmeticProblem]:
    """The first ``size`` problems of the set for ``(seed, difficulty)``."""
    return [arithmetic_problem(i, difficulty=difficulty, seed=seed) for i in range(size)]
