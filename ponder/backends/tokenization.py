"""Encoding, decoding and chat rendering with a Hugging Face tokenizer: what every backend
over a real model shares (in-process vLLM, OpenAI-compatible servers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HuggingFaceTokenization:
    """Mixin for backends that hold the model's tokenizer as ``self.tokenizer``."""

    tokenizer: Any

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def render_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat through the model's template, with the assistant turn opened."""
        rendered = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return self.encode(rendered)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        eos = self.tokenizer.eos_token_id
        return () if eos is None else (eos,)
