"""When two answers are the same answer.

Three tiers, cheapest first: equal after normalisation (``$42$`` / ``42.``), equal as plain
numbers (``42`` / ``42.0`` / ``1,000`` / ``\\frac{1}{2}`` / ``0.5``), then math-verify for
expressions (``x+1`` / ``1+x``). Anything math-verify cannot handle counts as "not
equivalent": odd model output must never crash a vote.

math-verify's own timeout uses ``signal.alarm``, which fails outside the main thread and
cancels any alarm the caller set, so it runs here without one. Instead, answers that could
make sympy compute for minutes (power towers, huge exponents or factorials, very long
expressions) skip the symbolic tier and are compared as strings only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

from math_verify import parse, verify

from ponder.verifiers.answers import matching_brace

_MAX_SYMBOLIC_CHARS = 200
_MAX_NUMBER_CHARS = 1000
_COSTLY = re.compile(
    r"\^\s*[{(][^})]*\^"  # a power inside an exponent (a tower)
    r"|\^\s*-?\d+\s*\^"  # an unbraced tower, 2^3^4
    r"|\^\s*[{(]?\s*-?\d{5,}"  # an exponent of five digits or more
    r"|\d{4,}\s*[})]?\s*!"  # the factorial of a four-digit number
    r"|binom\s*\{?\s*\d{4,}|\d{4,}\s*\}?\s*\\choose"
)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{3,}")
_MATH_WORDS = frozenset(
    "sin cos tan cot sec csc sinh cosh tanh arcsin arccos arctan log exp sqrt "
    "max min gcd lcm mod det lim inf infty".split()
)
# Spaces matter only between two letters: "\\sin x", "New York".
_INSIGNIFICANT_SPACE = re.compile(r"(?<![A-Za-z]) | (?![A-Za-z])")
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WRAPPING_COMMAND = re.compile(r"^\\(?:boxed|fbox|text|textbf|mathrm|mbox)\s*\{")
_SPACING = re.compile(r"\\[,;:! ]|\\(?:left|right)(?![A-Za-z])")
_DECIMAL = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+")
_FRACTION = re.compile(r"([+-]?\d+)/(\d+)|([+-]?)\\frac\{([+-]?\d+)\}\{(\d+)\}")


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that its timeout is off; here that is deliberate (see above)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _logger in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_logger).addFilter(_DropTimeoutDisabledWarning())


def normalize_answer(answer: str) -> str:
    """The answer without decoration that carries no meaning: surrounding whitespace, ``$``
    or ``\\(...\\)`` delimiters, a whole-answer ``\\boxed{}``/``\\text{}``, a trailing period,
    a leading ``\\$``, LaTeX spacing and ``\\left``/``\\right``; runs of whitespace become one."""
    text = _SPACING.sub("", answer).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    previous = None
    while text != previous:
        previous = text
        text = text.strip().removesuffix(".").strip().removeprefix("\\$")
        for opening, closing in _WRAPPERS:
            inner = text[len(opening) : -len(closing)]
            wrapped = text.startswith(opening) and text.endswith(closing)
            if wrapped and inner and opening not in inner:
                text = inner
        command = _WRAPPING_COMMAND.match(text)
        if command and matching_brace(text, command.end()) == len(text) - 1:
            text = text[command.end() : -1]
    return " ".join(text.split())


def _plain_number(text: str) -> Fraction | None:
    """The value of an integer, decimal or integer fraction (``1,234``, ``-0.5``,
    ``3/4``, ``\\frac{3}{4}``); None for anything else, and for numbers too long for
    ``int()`` to read or ``str()`` to write back (Python caps both near 4,300 digits)."""
    if len(text) > _MAX_NUMBER_CHARS:
        return None
    if _DECIMAL.fullmatch(text):
        return Fraction(text.replace(",", ""))
    fraction = _FRACTION.fullmatch(text)
    if fraction is None:
        return None
    sign, numerator, denominator = (
        ("", fraction[1], fraction[2]) if fraction[1] else (fraction[3], fraction[4], fraction[5])
    )
    if int(denominator) == 0:
        return None
    return Fraction(int(numerator), int(denominator)) * (-1 if sign == "-" else 1)


def canonical_answer_key(answer: str) -> str:
    """A key that equivalent answers often share and different ones never do: the
    normalised answer without insignificant spaces, plain numbers in lowest terms
    (``42.0`` -> ``42``, ``1,000`` -> ``1000``, ``0.5`` -> ``1/2``). Grouping compares keys
    before anything slow."""
    text = _INSIGNIFICANT_SPACE.sub("", normalize_answer(answer))
    value = _plain_number(text)
    return text if value is None else str(value)


def answers_equivalent(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` denote the same value or expression. Symmetric; never raises."""
    return _equivalent(*sorted((a, b)))


@lru_cache(maxsize=65536)
def _equivalent(a: str, b: str) -> bool:
    key_a, key_b = canonical_answer_key(a), canonical_answer_key(b)
    if key_a == key_b:
        return True
    norm_a, norm_b = normalize_answer(a), normalize_answer(b)
    if _is_prose(norm_a) or _is_prose(norm_b):
        return key_a.casefold() == key_b.casefold()
    if _plain_number(key_a) is not None and _plain_number(key_b) is not None:
        # Different numbers, unless a decimal is a fraction rounded ("0.333333" for "1/3"):
        # math-verify decides that with its own rounding rule.
        if {_written_as(norm_a), _written_as(norm_b)} != {"decimal", "fraction"}:
            return False
    if _too_costly(norm_a) or _too_costly(norm_b):
        return False
    return _symbolically_equal(norm_a, norm_b)


def _written_as(number: str) -> str:
    if "/" in number or "frac" in number:
        return "fraction"
    return "decimal" if "." in number else "integer"


def _is_prose(text: str) -> bool:
    """Words, not math: math-verify would read "pairs" as p*a*i*r*s, equal to "Paris"."""
    words = _WORD.findall(_LATEX_COMMAND.sub(" ", text))
    return any(word.lower() not in _MATH_WORDS for word in words)


def _too_costly(text: str) -> bool:
    return len(text) > _MAX_SYMBOLIC_CHARS or bool(_COSTLY.search(text.replace("**", "^")))


def _symbolically_equal(a: str, b: str) -> bool:
    parsed_a, parsed_b = _parse(a), _parse(b)
    if not parsed_a or not parsed_b:
        return False
    try:
        # verify() is asymmetric (it simplifies "x = 3" on one side only); ask both ways.
        return verify(list(parsed_a), list(parsed_b), timeout_seconds=None) or verify(
            list(parsed_b), list(parsed_a), timeout_seconds=None
        )
    except Exception:  # malformed input breaks sympy in many ways
        return False


@lru_cache(maxsize=16384)
def _parse(answer: str) -> tuple:
    """math-verify's reading of a bare answer, taken as LaTeX math first: read as prose,
    ``1+x`` would parse as just its first number, 1."""
    try:
        parsed = parse(f"${answer}$", parsing_timeout=None) or parse(answer, parsing_timeout=None)
    except Exception:
        return ()
    return tuple(parsed)


def group_answers(answers: Sequence[str | None]) -> list[list[int]]:
    """Indices of equivalent answers, grouped; groups ordered by first appearance.

    An index whose answer is None is in no group. Each answer joins the first group whose
    first member it is equivalent to, so the result is deterministic even where
    equivalence is not transitive."""
    groups: list[list[int]] = []
    representatives: list[str] = []
    group_of_key: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        key = canonical_answer_key(answer)
        if key not in group_of_key:
            group_of_key[key] = next(
                (g for g, rep in enumerate(representatives) if answers_equivalent(rep, answer)),
                len(groups),
            )
        group = group_of_key[key]
        if group == len(groups):
            groups.append([])
            representatives.append(answer)
        groups[group].append(index)
    return groups
