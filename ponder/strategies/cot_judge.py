"""Verifier-based trimming (TrimR: "Verifier-based Training-Free Thinking Compression for
Efficient Test-Time Scaling"): a small judge model reads each thought as it completes and
says whether the chain is wasting its thinking.

A thought is the text between two boundaries: the thinking format's ``segment_end`` (a blank
line) or one of its ``segment_markers`` ("Wait", "Alternatively", matched as whole words with
their case), which open a new thought. Only completed thoughts (a boundary after them) are
judged, from the second on: each pattern is a question about the latest thought given the
ones before it, answered Yes or No and read from the verdict token's logprobs:

- overthinking: the answer was reached before and the latest thought only re-checks it;
- underthinking: the latest thought drops an unfinished approach for another one;
- repetition: the latest thought says again what was said before. A thought that repeats an
  earlier one word for word counts at once and is not sent to the judge at all.

A pattern seen in ``patience`` thoughts (counted over the chain) ends the thinking: the chain
is cut after that thought and its closing prompt, then the answer prompt, is injected.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ponder.core.problem import Problem
from ponder.core.thinking import ThinkingFormat
from ponder.errors import BudgetExhaustedError
from ponder.runtime import Run
from ponder.verifiers.base import Score, metered_scores
from ponder.verifiers.judge import Judge, problem_text

Pattern = Literal["overthinking", "underthinking", "repetition"]
PATTERNS: tuple[Pattern, ...] = ("overthinking", "underthinking", "repetition")
"""Every pattern, in the order they are asked and, when several trip at once, win."""


class PatternCheck(BaseModel):
    """How one pattern is asked about, when it counts, and how the chain is closed on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(
        0.7, ge=0.0, le=1.0, description="Judge score (P(yes), or grade / 9) at or above "
        "which a thought shows the pattern."
    )
    patience: int = Field(
        1, ge=1, description="Thoughts showing the pattern before the chain is trimmed."
    )
    question: str = Field(min_length=1, description="Asked about the latest thought.")
    closing_prompt: str = Field(
        min_length=1, description="Injected after the thought that trips the pattern, "
        "before the answer prompt."
    )


class Overthinking(PatternCheck):
    question: str = Field(
        "Did the earlier reasoning already reach an answer that the latest thought only "
        "checks again?", min_length=1,
    )
    closing_prompt: str = Field(
        "\n\nI have reached the answer and checked it enough.", min_length=1
    )


class Underthinking(PatternCheck):
    patience: int = Field(3, ge=1, description="Switches of approach before trimming.")
    question: str = Field(
        "Does the latest thought drop the approach before it, unfinished, for a different one?",
        min_length=1,
    )
    closing_prompt: str = Field(
        "\n\nI keep switching approaches, so I will commit to the best result so far.",
        min_length=1,
    )


class Repetition(PatternCheck):
    question: str = Field(
        "Does the latest thought repeat what the earlier reasoning already said, adding "
        "nothing new?", min_length=1,
    )
    closing_prompt: str = Field("\n\nI am repeating myself, so I will stop here.", min_length=1)
    exact: bool = Field(
        True, description="Count a thought that repeats an earlier one word for word without "
        "asking the judge."
    )


_TEMPLATE = (
    "Problem: {problem}\n\nEarlier reasoning:\n{thoughts}\n\nLatest thought:\n{thought}\n\n"
    "{question} "
)


class ThoughtJudge(Judge):
    """The judge of thoughts: its prompt, its model, and the patterns it looks for (a pattern
    set to None is not asked about)."""

    required_placeholders: ClassVar[frozenset[str]] = frozenset(
        {"problem", "thoughts", "thought", "question"}
    )
    default_templates: ClassVar[dict[str, str]] = {
        "yes_no": _TEMPLATE + "Reply with Yes or No.",
        "digit": _TEMPLATE + "Reply with one digit from 0 (surely not) to 9 (surely).",
    }

    overthinking: Overthinking | None = Overthinking()
    underthinking: Underthinking | None = Underthinking()
    repetition: Repetition | None = Repetition()

    @model_validator(mode="after")
    def _asks_something(self) -> ThoughtJudge:
        if all(getattr(self, pattern) is None for pattern in PATTERNS):
            raise ValueError(
                "judge needs at least one of overthinking, underthinking, repetition; "
                "set judge itself to null to turn trimming off"
            )
        return self

    def check(self, pattern: Pattern) -> PatternCheck | None:
        return getattr(self, pattern)

    def questions(
        self, problem: Problem, earlier: list[str], thought: str
    ) -> list[tuple[Pattern, PatternCheck, str]]:
        """(pattern, its check, the filled-in prompt) for every pattern asked about."""
        template, question = self.prompt_template(), problem_text(problem)
        thoughts = "\n\n".join(earlier)
        return [
            (
                pattern,
                check,
                template.format(
                    problem=question, thoughts=thoughts, thought=thought, question=check.question
                ),
            )
            for pattern in PATTERNS
            if (check := self.check(pattern)) is not None
        ]

    async def verdicts(self, prompts: list[str], ctx: Run) -> list[Score]:
        """One score per prompt, all sent at once; each prompt is one verifier call. A budget
        that cannot hold them gets ``Score(None, reason)`` for each."""
        return await metered_scores(
            ctx, len(prompts), lambda: self._tokens_held(prompts, ctx), "not judged"
        )

    async def _tokens_held(self, prompts: list[str], ctx: Run) -> list[Score]:
        try:
            return await self._judge(prompts, ctx)
        except BudgetExhaustedError as exc:  # the calls fit, their tokens did not
            return [Score(None, f"not judged: {exc}")] * len(prompts)


@dataclass(frozen=True)
class Thought:
    index: int
    text: str
    end: int
    """Offset in the chain's text just after the thought's last non-blank character."""


class ThoughtLog:
    """One chain's completed thoughts, found as its text streams in, and the patterns seen."""

    def __init__(self, thinking: ThinkingFormat) -> None:
        markers = sorted(thinking.segment_markers, key=len, reverse=True)
        words = "|".join(re.escape(marker) for marker in markers)
        marker = rf"|(?<!\w)(?=(?:{words})\W)" if markers else ""
        self._boundary = re.compile(re.escape(thinking.segment_end) + marker)
        self._think_start = thinking.think_start
        self._start = 0
        self.thoughts: list[Thought] = []
        self.seen: Counter[Pattern] = Counter()
        self._said: set[str] = set()

    def completed(self, text: str) -> list[Thought]:
        """Thoughts of ``text`` completed since the last call (``text`` only ever grows)."""
        new: list[Thought] = []
        for match in self._boundary.finditer(text, self._start):
            if match.end() == match.start() == self._start:
                continue  # a marker opening the thought that starts here
            raw = text[self._start : match.start()].rstrip()
            end, body = self._start + len(raw), raw.strip()
            if self._think_start and not self.thoughts:
                body = body.removeprefix(self._think_start).strip()
            self._start = match.end()
            if body:
                new.append(Thought(len(self.thoughts), body, end))
                self.thoughts.append(new[-1])
        return new

    def earlier(self, thought: Thought) -> list[str]:
        return [t.text for t in self.thoughts[: thought.index]]

    def repeats(self, thought: Thought) -> bool:
        """Whether an earlier thought said the same words (case and spacing aside); remembers
        this one."""
        words = " ".join(thought.text.casefold().split())
        repeated = words in self._said
        self._said.add(words)
        return repeated

    def tally(self, pattern: Pattern, check: PatternCheck) -> bool:
        """Count one more thought showing ``pattern``; True once it reaches the patience."""
        self.seen[pattern] += 1
        return self.seen[pattern] >= check.patience


class JudgeQueue:
    """The judge questions of all chains of a run: those asked in the same turn of the event
    loop go out as one batch (one reservation, submitted together so the engine runs them side
    by side)."""

    def __init__(self, judge: ThoughtJudge, ctx: Run) -> None:
        self.judge = judge
        self.ctx = ctx
        self.batches = 0
        self.calls = 0
        self._waiting: list[tuple[list[str], asyncio.Future[list[Score]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def ask(self, prompts: list[str]) -> list[Score]:
        future: asyncio.Future[list[Score]] = asyncio.get_running_loop().create_future()
        self._waiting.append((prompts, future))
        if len(self._waiting) == 1:
            task = asyncio.create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return await future

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let every chain that completed a thought this turn ask too
        batch = [(prompts, f) for prompts, f in self._waiting if not f.done()]
        self._waiting = []
        prompts = [prompt for asked, _ in batch for prompt in asked]
        if not prompts:
            return
        self.batches += 1
        self.calls += len(prompts)
        try:
            scores = iter(await self.judge.verdicts(prompts, self.ctx))
        except Exception as exc:  # every asker hears about the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for asked, future in batch:
            answer = [next(scores) for _ in asked]
            if not future.done():
                future.set_result(answer)

    async def drain(self) -> None:
        """Wait for batches still in flight, so their usage is charged before the run ends."""
        await asyncio.gather(*self._sending, return_exceptions=True)
