"""Collaborative verification of chains of thought by programs (Liang et al., 2024, "Improving
LLM Reasoning through Scaling Inference Computation with Collaborative Verification": CoT
answers checked against program-of-thought answers).

For a problem, the verifier has the model write ``programs`` programs (one request, the prefix
cache serving the shared prompt), runs them in the sandbox, and scores each candidate by how
much of the executed evidence agrees with its answer: the weight of the programs whose printed
answer equals it, over the weight of all programs that printed one. A program whose answer no
candidate reached weighs ``unsupported_weight`` (less than one): a lone program bug should not
outvote chains that agree with each other, yet an answer both a chain and a program reach is
the strongest evidence there is. The signal comes from execution, not from the model's opinion
of its own reasoning.

When no program prints an answer (all crashed, or the budget paid for none), the candidates are
scored by their agreement with each other instead, and the reason says so: the ranking is then
self-consistency's, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from ponder.core.generation import SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier, verifiers
from ponder.verifiers.equivalence import group_answers
from ponder.verifiers.programs import ProgramFormat


def agreement_scores(
    answers: Sequence[str | None], program_answers: Sequence[str | None],
    unsupported_weight: float,
) -> list[float | None]:
    """Per candidate answer, the weighted share of the program answers equivalent to it
    (None for a candidate with no answer, and for all when no program answered)."""
    pooled = [*answers, *program_answers]
    group_of = {i: g for g, members in enumerate(group_answers(pooled)) for i in members}
    supported = {group_of[i] for i, answer in enumerate(answers) if answer is not None}
    weights: dict[int, float] = {}
    for offset, answer in enumerate(program_answers):
        if answer is not None:
            group = group_of[len(answers) + offset]
            weight = 1.0 if group in supported else unsupported_weight
            weights[group] = weights.get(group, 0.0) + weight
    total = sum(weights.values())
    if total == 0:
        return [None] * len(answers)
    return [None if answer is None else weights.get(group_of[i], 0.0) / total
            for i, answer in enumerate(answers)]


@verifiers.register("cot_pot")
class CoTPoT(Verifier):
    """Score = agreement of the candidate's answer with programs written for the problem."""

    scores_partial_paths: ClassVar[bool] = False

    programs: int = Field(8, ge=1, le=256, description="Programs written and run per problem.")
    program: ProgramFormat = Field(
        ProgramFormat(), description="The prompt, worked examples and sandbox of the programs."
    )
    sampling: SamplingConfig = Field(
        SamplingConfig(max_tokens=160), description="How the programs are sampled."
    )
    unsupported_weight: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Weight of a program whose answer no candidate reached (others weigh 1).",
    )

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        executed = await self._run_programs(problem, ctx)
        answers = [c.answer for c in candidates]
        program_answers = [c.answer for c in executed]
        ran = sum(a is not None for a in program_answers)
        scores = agreement_scores(answers, program_answers, self.unsupported_weight)
        reason = f"{ran}/{len(executed)} programs printed an answer"
        if ran == 0:
            # No executed evidence: rank by agreement among the candidates themselves.
            scores = agreement_scores(answers, answers, 1.0)
            reason += "; scored by agreement among the candidates instead"
        return [Score(None, "the candidate gave no answer") if score is None
                else Score(score, reason) for score in scores]

    async def _run_programs(self, problem: Problem, ctx: Run) -> list[Candidate]:
        """The programs the budget pays for, each run for its answer (none when it pays for
        none)."""
        prompt = ctx.render(self.program.problem(problem), self.program.system_prompt)
        params = SamplingParams(
            n=self.programs, temperature=self.sampling.temperature, top_p=self.sampling.top_p,
            max_tokens=self.sampling.max_tokens, stop=(*self.sampling.stop, *self.program.stop),
            seed=ctx.next_seed(),
        )
        state = await ctx.generate(prompt, params, calls="none", fit=True)
        if state is None:
            return []
        written = [
            Candidate(index=i, text=c.text, num_tokens=c.num_tokens, finish_reason=c.finish_reason)
            for i, c in enumerate(state.completions) if c.finish_reason != "aborted"
        ]
        await self.program.answer(written, ctx)
        return written
