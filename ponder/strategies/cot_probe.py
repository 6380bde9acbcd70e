"""Probe-based early exit (Dynasor-CoT: Fu et al., "Efficiently Serving LLM Reasoning Programs
with Certaindex"): every ``interval`` thinking tokens, ask the chain for its answer now.

A probe continues the chain's token ids so far plus the answer prompt, greedily, for a few
tokens: a short call whose long prefix the engine's prefix cache already holds. Once the last
``window`` probes (by step) all found an answer, none of them hedges ("Wait", "Hmm": the
thinking format's segment markers), and all their answers are equivalent, the chain has
settled and further thinking is waste.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ponder.core.generation import FinishReason
from ponder.core.thinking import ThinkingFormat
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.equivalence import group_answers


class ProbeExit(BaseModel):
    """When to probe a thinking chain and when its probes say it may stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: int = Field(32, ge=1, description="Thinking tokens between probes (T).")
    window: int = Field(
        3, ge=2, description="Latest probes that must all be certain and agree to stop the "
        "chain (W); at least 2, since agreement needs two answers."
    )
    max_tokens: int = Field(16, ge=1, description="Most tokens a probe writes (greedy).")


@dataclass(frozen=True)
class Probe:
    """One probe's reply, read."""

    step: int
    """1 for a chain's first probe, 2 for its second, ..."""
    thinking_tokens: int
    """Chain tokens before the answer prompt: where the probe looked in."""
    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason | None
    answer: str | None
    """What the extractor found in the answer prompt plus the reply."""
    certain: bool
    """An answer was found and the reply does not hedge."""

    @classmethod
    def read(
        cls,
        step: int,
        thinking_tokens: int,
        text: str,
        token_ids: list[int],
        finish_reason: FinishReason | None,
        *,
        thinking: ThinkingFormat,
        extractor: AnswerExtractor,
    ) -> Probe:
        # The answer prompt is part of what the model answered to: "Answer:" + " 12".
        answer = extractor.extract(thinking.answer_prompt + text)
        return cls(
            step=step,
            thinking_tokens=thinking_tokens,
            text=text,
            token_ids=tuple(token_ids),
            finish_reason=finish_reason,
            answer=answer,
            certain=answer is not None and not thinking.is_hedging(text),
        )


class ProbeWindow:
    """A chain's probes as they come back (in any order) and the exit rule over them."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.probes: dict[int, Probe] = {}

    def add(self, probe: Probe) -> Probe | None:
        """Record ``probe``; return the last probe of the earliest window of ``window``
        consecutive steps that are all in, all certain and all equivalent (None if none)."""
        self.probes[probe.step] = probe
        for last in range(probe.step, probe.step + self.window):
            if self._settled(range(last - self.window + 1, last + 1)):
                return self.probes[last]
        return None

    def _settled(self, steps: range) -> bool:
        probes = [self.probes[step] for step in steps if step in self.probes]
        if len(probes) < self.window or not all(p.certain for p in probes):
            return False
        return len(group_answers([p.answer for p in probes])) == 1
