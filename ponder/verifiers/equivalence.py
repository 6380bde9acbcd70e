"""When two answers are the same answer: "42", "42.0", "$42$" and "1,000"/"1000" cheaply by a
canonical key; "1/2" vs "\\frac{1}{2}" vs "0.5" and "x+1" vs "1+x" through math-verify.

math-verify's own timeout uses signals, which work only in the main thread; ponder runs it
without one (answers here are short) and treats any failure as "not equivalent" rather
than letting odd model output crash a vote.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

# math-verify warns once that its timeout is off; that is deliberate here (see above).
for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_NUMERIC = re.compile(r"^-?\d+(?:\.\d+)?(?:/\d+)?$")


def canonical_answer_key(answer: str) -> str:
    """A string that equal plain answers share: decoration and thousands separators gone,
    numbers in lowest terms (``42.0`` -> ``42``, ``2/4`` -> ``1/2``)."""
    text = answer.strip().strip("$ ").replace("\\$", "").replace(" ", "")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    if _NUMERIC.match(text):
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            return text
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return text


@lru_cache(maxsize=65536)
def answers_equivalent(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` denote the same value or expression. Never raises."""
    key_a, key_b = canonical_answer_key(a), canonical_answer_key(b)
    if key_a == key_b:
        return True
    if _NUMERIC.match(key_a) and _NUMERIC.match(key_b):
        return False  # two different numbers in lowest terms
    return _math_verify(a, b)


def _math_verify(a: str, b: str) -> bool:
    from math_verify import parse, verify

    try:
        parsed_a, parsed_b = _parse(parse, a), _parse(parse, b)
        if not parsed_a or not parsed_b:
            return False
        return bool(verify(parsed_a, parsed_b, timeout_seconds=None))
    except Exception:  # math-verify raises on malformed LaTeX in many ways
        return False


def _parse(parse: object, answer: str) -> list:
    """Bare answers are read as math ("1+x" as an expression, not the number 1)."""
    if "$" not in answer and "\\boxed" not in answer:
        parsed = parse(f"${answer}$", parsing_timeout=None)  # type: ignore[operator]
        if parsed:
            return parsed
    return parse(answer, parsing_timeout=None)  # type: ignore[operator]


def group_answers(answers: Sequence[str | None]) -> list[list[int]]:
    """Indices of equivalent answers grouped, groups in order of first appearance. A None
    answer (none found) is in no group."""
    groups: list[list[int]] = []
    representatives: list[str] = []
    by_key: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        key = canonical_answer_key(answer)
        group = by_key.get(key)
        if group is None:
            group = next(
                (g for g, rep in enumerate(representatives) if answers_equivalent(rep, answer)), None
            )
        if group is None:
            group = len(groups)
            groups.append([])
            representatives.append(answer)
        by_key[key] = group
        groups[group].append(index)
    return groups
