"""LLM-as-judge verifiers: a model reads a prompt about the solution (or one step of it) and
its verdict is read from the top logprobs of the single token it generates.

``LLMJudge`` judges whole solutions; ``StepJudge`` judges every step of every path, each step
shown after the ones before it. Every prompt of a scoring call goes to the engine at once, so
the engine batches them; the tokens are charged to the run's ledger, while the calls count as
verifier calls (charged by the base class), not model calls.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ponder.core.generation import GenerationState, SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.errors import BudgetExhaustedError
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier, verifiers
from ponder.verifiers.judge_scoring import TOP_LOGPROBS, JudgeMode, verdict_score
from ponder.verifiers.process import ProcessVerifier

_VERDICT = SamplingParams(n=1, temperature=1.0, max_tokens=1, logprobs=TOP_LOGPROBS)
"""One token is the verdict; only its logprobs matter, so the sampled token does not."""

_ANSWER_PREFIXES = {"yes_no": "Answer:", "digit": "Answer: "}
"""Measured on SmolLM2-135M: after "Answer:" 90% of the next token's mass is yes/no (47%
with no prefix); " Yes" is one token, but a digit comes after a separate space token, so
digit mode ends on the space (98% digit mass; 0% after "Answer:", 10% with no prefix)."""

_NO_PREVIOUS_STEPS = "(none)"
"""What {previous_steps} reads for a path's first step."""

_REPLY = {
    "yes_no": "Reply with Yes or No.",
    "digit": "Reply with one digit from 0 (surely wrong) to 9 (surely right).",
}


def placeholders(template: str) -> set[str]:
    """Names of the ``{name}`` fields in a str.format template (``{{`` is a literal brace)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"template is not a valid format string: {exc}") from None


def _braced(names: set[str] | frozenset[str]) -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(names))


def problem_text(problem: Problem) -> str:
    """The question as a judge reads it: the prompt, or the chat's last user turn."""
    if problem.prompt is not None:
        return problem.prompt
    return next(m.content for m in reversed(problem.messages or ()) if m.role == "user")


class Judge(BaseModel):
    """What every judge shares: its prompt, how the verdict is read, which model reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_placeholders: ClassVar[frozenset[str]]
    """Exactly the ``{names}`` a template must use; anything else is a typo caught early."""
    default_templates: ClassVar[dict[str, str]]
    """The template per mode when none is given."""

    mode: JudgeMode = Field(
        "yes_no", description="yes_no: P(yes)/(P(yes)+P(no)); digit: expected 0-9 grade / 9."
    )
    template: str | None = Field(
        None, description="The user turn, str.format-style. None: the default for the mode."
    )
    system_prompt: str | None = Field(None, description="A system turn before the template.")
    answer_prefix: str | None = Field(
        None, description="Text opening the judge's reply, so that the next token is the "
        "verdict. None: the mode's default ('Answer:' or 'Answer: '); '' for none."
    )
    backend: str | dict[str, Any] | None = Field(
        None, description="The judging model: None for the model being verified, else a model "
        "name or backend config (the process's engine is reused for the same config)."
    )

    @field_validator("template")
    @classmethod
    def _has_exactly_the_placeholders(cls, template: str | None) -> str | None:
        if template is None:
            return None
        found = placeholders(template)
        allowed = _braced(cls.required_placeholders)
        problems = []
        if missing := cls.required_placeholders - found:
            problems.append(f"is missing the placeholder {_braced(missing)}")
        if unknown := found - cls.required_placeholders:
            problems.append(f"has the unknown placeholder {_braced(unknown)}")
        if problems:
            raise ValueError(f"template {' and '.join(problems)}; it takes exactly {allowed}")
        return template

    def prompt_template(self) -> str:
        return self.template if self.template is not None else self.default_templates[self.mode]

    def reply_prefix(self) -> str:
        prefix = self.answer_prefix
        return prefix if prefix is not None else _ANSWER_PREFIXES[self.mode]

    async def _judge(self, prompts: list[str], ctx: Run) -> list[Score]:
        """One verdict per filled-in prompt, all submitted at once. Raises
        ``BudgetExhaustedError`` when the ledger cannot hold their tokens."""
        if not prompts:
            return []
        judge = await ctx.on(self.backend)
        token_ids = [self._prompt_ids(judge, prompt) for prompt in prompts]
        with judge.require(  # the judge's run spends from this run's ledger
            prompt_tokens=sum(len(ids) for ids in token_ids),
            generated_tokens=len(token_ids),
            calls="none",
        ) as spending:
            states = await asyncio.gather(*(spending.generate(ids, _VERDICT) for ids in token_ids))
        return [self._verdict(judge, state) for state in states]

    def _prompt_ids(self, judge: Run, prompt: str) -> list[int]:
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        prefix = self.reply_prefix()
        return judge.render_chat(messages) + (judge.encode(prefix) if prefix else [])

    def _verdict(self, judge: Run, state: GenerationState) -> Score:
        top = state.completions[0].top_logprobs
        if not top:
            cut = " (the budget's time ran out)" if state.timed_out else ""
            return Score(None, f"the judge returned no token logprobs{cut}")
        return verdict_score(top[0], lambda token_id: judge.decode([token_id]), self.mode)


@verifiers.register("llm_judge")
class LLMJudge(Judge, Verifier):
    """Judges whole solutions: is the final answer correct (or a 0-9 grade of it)?"""

    required_placeholders: ClassVar[frozenset[str]] = frozenset({"problem", "solution"})
    default_templates: ClassVar[dict[str, str]] = {
        mode: "Problem: {problem}\n\nSolution: {solution}\n\n"
        f"Is the final answer of this solution correct? {reply}"
        for mode, reply in _REPLY.items()
    }

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        template, question = self.prompt_template(), problem_text(problem)
        prompts = [template.format(problem=question, solution=c.text) for c in candidates]
        try:
            return await self._judge(prompts, ctx)
        except BudgetExhaustedError as exc:
            return [Score(None, f"not judged: {exc}")] * len(candidates)


@verifiers.register("step_judge")
class StepJudge(Judge, ProcessVerifier):
    """Judges each step given the problem and the steps before it: is this step correct?"""

    required_placeholders: ClassVar[frozenset[str]] = frozenset(
        {"problem", "previous_steps", "step"}
    )
    default_templates: ClassVar[dict[str, str]] = {
        mode: "Problem: {problem}\n\nPrevious steps:\n{previous_steps}\n\n"
        f"Next step: {{step}}\n\nIs the next step correct? {reply}"
        for mode, reply in _REPLY.items()
    }

    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: Run
    ) -> list[list[float | None] | Score]:
        template, question = self.prompt_template(), problem_text(problem)
        prompts = [
            template.format(
                problem=question,
                previous_steps="\n".join(steps[:i]) or _NO_PREVIOUS_STEPS,
                step=step,
            )
            for steps in paths
            for i, step in enumerate(steps)
        ]
        # A step's verdict depends only on its prompt, so the steps a path shares with its
        # parent (step search scores every path again as it grows) are judged once per run.
        judged = ctx.score_cache
        keys = [(self._cache_key(), "step", prompt) for prompt in prompts]
        todo = list(dict.fromkeys(key for key in keys if key not in judged))
        try:
            verdicts = await self._judge([prompt for _, _, prompt in todo], ctx)
        except BudgetExhaustedError as exc:
            return [Score(None, f"not judged: {exc}")] * len(paths)
        judged.update(zip(todo, verdicts))
        scores = (judged[key].value for key in keys)
        return [[next(scores) for _ in steps] for steps in paths]
