"""Reading a judge's verdict from the top logprobs of the one token it generates.

A sampled verdict token throws away what the model believed; its distribution keeps it. So
a score is a probability read off the top candidates of that token: P(yes) against P(no), or
the expected digit of a 0-9 grade. Tokens are matched by their decoded text, stripped and
lower-cased, because a tokenizer has several ids for one word (``Yes``, `` Yes``, ``yes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

from ponder.verifiers.base import Score

JudgeMode = Literal["yes_no", "digit"]

TOP_LOGPROBS = 20
"""Candidates asked for at the verdict position (the most ``SamplingParams`` allows)."""

TopLogprobs = Mapping[int, float]
"""One position's candidates: token id -> logprob."""

Decode = Callable[[int], str]
"""Text of one token id."""

_DIGITS = frozenset("0123456789")


def _mass(top: TopLogprobs, decode: Decode) -> dict[str, float]:
    """Probability per normalised token text (ids that read the same are summed)."""
    mass: dict[str, float] = {}
    for token_id, logprob in top.items():
        word = decode(token_id).strip().lower()
        mass[word] = mass.get(word, 0.0) + math.exp(logprob)
    return mass


def yes_no_score(top: TopLogprobs, decode: Decode, *, yes: str = "yes", no: str = "no") -> Score:
    """P(yes) / (P(yes) + P(no)); None when neither word is among the candidates. The words
    are matched as the tokens are: stripped and lower-cased."""
    yes, no = yes.strip().lower(), no.strip().lower()
    mass = _mass(top, decode)
    p_yes, p_no = mass.get(yes, 0.0), mass.get(no, 0.0)
    if p_yes + p_no == 0.0:
        return Score(None, f"judge gave neither {yes} nor {no} in its top {TOP_LOGPROBS}")
    return Score(p_yes / (p_yes + p_no))


def digit_score(top: TopLogprobs, decode: Decode) -> Score:
    """Expected digit over the digits among the candidates (renormalised), divided by 9;
    None when no digit is among them."""
    mass = _mass(top, decode)
    digits = {int(word): p for word, p in mass.items() if word in _DIGITS}
    total = sum(digits.values())
    if total == 0.0:
        return Score(None, f"judge gave no digit 0-9 in its top {TOP_LOGPROBS}")
    return Score(sum(d * p for d, p in digits.items()) / total / 9)


def verdict_score(top: TopLogprobs, decode: Decode, mode: JudgeMode) -> Score:
    return yes_no_score(top, decode) if mode == "yes_no" else digit_score(top, decode)
