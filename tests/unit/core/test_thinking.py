"""The thinking format: presets, and the thinking/answer split of text and of tokens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.core.thinking import ThinkingFormat


def decode(ids: list[int]) -> str:
    return "".join(map(chr, ids))


def ids(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_a_preset_name_builds_the_format() -> None:
    r1 = ThinkingFormat.model_validate("r1")
    assert (r1.think_start, r1.think_end, r1.name) == ("<think>", "</think>", "r1")
    assert ThinkingFormat().think_end == "Answer:"


def test_an_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown thinking format 'o1'; choose one of: plain, qwen3, r1"):
        ThinkingFormat.model_validate("o1")


def test_the_answer_prompt_must_close_thinking() -> None:
    with pytest.raises(ValidationError, match="answer_prompt must contain think_end"):
        ThinkingFormat(think_end="</think>", answer_prompt="\nAnswer:")


@pytest.mark.parametrize(
    ("preset", "text", "thinking", "answer"),
    [
        ("plain", "6 times 2 is 12.\nAnswer: 12", "6 times 2 is 12.\n", "Answer: 12"),
        ("plain", "still thinking about it", "still thinking about it", ""),
        ("r1", "<think>\n6*2=12\n</think>\n\n**12**", "\n6*2=12\n", "</think>\n\n**12**"),
        ("r1", "6*2=12</think>12", "6*2=12", "</think>12"),  # template opened <think>
    ],
)
def test_split_text(preset: str, text: str, thinking: str, answer: str) -> None:
    assert ThinkingFormat.model_validate(preset).split(text) == (thinking, answer)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("abc Answer: 1", 4), ("Answer: 1", 0), ("no marker", 9), ("", 0)],
)
def test_split_tokens_counts_the_tokens_before_the_marker(text: str, expected: int) -> None:
    assert ThinkingFormat().split_tokens(ids(text), decode) == expected


def test_a_token_that_straddles_the_marker_counts_as_answer() -> None:
    pieces = ["so ", "12.\nAns", "wer: 12"]  # a token per piece

    def decode_pieces(token_ids: list[int]) -> str:
        return "".join(pieces[i] for i in token_ids)

    assert ThinkingFormat().split_tokens([0, 1, 2], decode_pieces) == 1


def test_hedging_words_are_found_case_blind() -> None:
    fmt = ThinkingFormat()
    assert fmt.is_hedging("12. wait, let me check")
    assert not fmt.is_hedging("The answer is 12.")
