"""One result shape for every strategy: every candidate, the selected one, and honest usage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ponder.core.generation import FinishReason
from ponder.core.usage import Usage


@dataclass(frozen=True)
class Execution:
    """A program-of-thought chain's program and what running it gave."""

    code: str | None
    """The program taken from the chain (None when the chain held none)."""
    output: str
    """What it printed (up to the sandbox's output cap)."""
    error: str | None
    """Why it gave no answer (no program, an exception, a timeout, nothing printed)."""


@dataclass
class Candidate:
    """A finished (or budget-cut) chain a strategy considered."""

    index: int
    text: str
    num_tokens: int
    finish_reason: FinishReason | None
    answer: str | None = None
    """The answer extracted from ``text`` (None when none could be found)."""
    score: float | None = None
    """The verifier's score, for strategies that score candidates."""
    score_reason: str | None = None
    """Why the verifier scored as it did (or could not score), when it says."""
    step_scores: tuple[float | None, ...] | None = None
    """A process verifier's per-step scores (``score`` is their aggregate)."""
    thinking_tokens: int | None = None
    """Of ``num_tokens``, those before the answer (None when not counted)."""
    token_ids: list[int] = field(default_factory=list, repr=False)
    logprobs: list[float] | None = field(default=None, repr=False)
    """Logprob of each generated token, when the strategy asked for them."""
    program: Execution | None = None
    """For a program chain: the program and its run, whose output is ``answer``."""

    @property
    def mean_logprob(self) -> float | None:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None

    def record(
        self, score: float | None, reason: str | None, steps: tuple[float | None, ...] | None = None
    ) -> None:
        """Keep a verifier's verdict on this candidate."""
        self.score, self.score_reason, self.step_scores = score, reason, steps

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["token_ids"], data["logprobs"]
        data["mean_logprob"] = self.mean_logprob
        return data


@dataclass
class Result:
    """What a strategy returns. ``answer`` is the selected candidate's answer."""

    strategy: str
    candidates: list[Candidate]
    selected_index: int | None
    usage: Usage
    budget_exhausted: bool = False
    """True when the budget ended the run early; the answer is then the best so far."""
    exhausted_by: str | None = None
    """Which limit ended it (generated_tokens, total_tokens, model_calls, seconds, ...)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Strategy-specific evidence, such as vote counts."""
    tree: Any = None
    """The reasoning tree, for search strategies (its ``to_dict`` goes into ``to_dict``)."""

    @property
    def best(self) -> Candidate | None:
        if self.selected_index is None:
            return None
        return self.candidates[self.selected_index]

    @property
    def answer(self) -> str | None:
        best = self.best
        return best.answer if best is not None else None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "strategy": self.strategy,
            "answer": self.answer,
            "selected_index": self.selected_index,
            "budget_exhausted": self.budget_exhausted,
            "exhausted_by": self.exhausted_by,
            "details": self.details,
            "usage": self.usage.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
        }
        if self.tree is not None:
            data["tree"] = self.tree.to_dict()
        return data
