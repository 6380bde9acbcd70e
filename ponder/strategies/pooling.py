"""Candidates for a vote or a verifier: plain samples, or the pooled results of a sub-strategy.

``SampledStrategy`` is the shared front half of best-of-N and self-consistency. Without a
``sampler`` it samples ``n`` chains in one request (``sample_chains``), as it always has.
With one, the sampler is run ``n`` times instead, all runs at once so the engine batches
them, and their candidates are pooled:

- ``pool="selected"`` (default): each run gives one candidate, the one it selected (a run that
  selected none gives nothing). Self-consistency over short-m@k is then a vote among ``n``
  short-m@k winners; best-of-N over budget forcing scores ``n`` forced chains.
- ``pool="all"``: every candidate of every run joins the pool.

Pooled candidates are copies renumbered in pool order (run by run); ``details["pooled_from"]``
maps each back to ``[run, index in that run]``. Each run works in a child context: the same
backend and score cache, a child ledger of the parent's (so every token, call and second a
run spends counts against the parent's budget, and a run can never spend what the parent
does not have), and its own random stream seeded from the parent's, seeds drawn in run order
so the result does not depend on how the runs interleave. The parent's usage is its ledger's:
the runs' usage plus its own (a verifier's calls). When any run was cut short by the budget,
the parent reports the budget as exhausted. The parent's ``sampling`` is not used with a
sampler; the sampler's own settings apply.

The back half they share is how the final answer is read and chosen: ``answers`` says
whether a candidate's answer is what the extractor finds or its free-form text, and
``free_form`` how free-form answers are chosen where a vote would count equal ones
(``ponder.verifiers.free_form``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.sampling import ChainFormat, sample_formatted
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.free_form import AnswerMode, Choice, FreeFormRule, choose_answer
from ponder.verifiers.programs import ProgramFormat
from ponder.verifiers.selection import SelectionRule


@dataclass
class Pool:
    """The candidates a strategy decides among, and how they were come by."""

    candidates: list[Candidate]
    budget_exhausted: bool
    exhausted_by: str | None
    details: dict[str, Any] = field(default_factory=dict)
    """Evidence of a sampler's runs (empty for plain sampling)."""


class SampledStrategy(Strategy):
    """A strategy that decides among ``n`` chains sampled at once, or among the pooled
    candidates of ``n`` runs of a ``sampler`` strategy."""

    n: int = Field(
        8, ge=1, le=1024,
        description="Chains sampled (all submitted at once); with a sampler, its runs (all at once).",
    )
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()
    format: ChainFormat = Field(
        "words", description="How the chains reason: 'words' (the answer is extracted from the "
        "text), 'program' (a Python program whose printed output, run in the sandbox, is the "
        "answer), or 'mixed' (both, voting together; program.mixed_share of them programs).",
    )
    program: ProgramFormat = Field(
        ProgramFormat(), description="The prompt, worked examples and sandbox of program chains."
    )
    sampler: Strategy | None = Field(
        None,
        description="A strategy whose runs supply the candidates instead of plain sampling: "
        "a registry name, a config with 'name', or an object. None: plain sampling.",
    )
    pool: Literal["selected", "all"] = Field(
        "selected", description="With a sampler: each run's selected candidate, or all of them."
    )
    answers: AnswerMode = Field(
        "extracted", description="What a candidate's answer is: 'extracted' (what the extractor "
        "finds), 'free_form' (its whole text, for questions with no short answer), or 'auto' "
        "(free-form when fewer than half of the candidates have a short extracted answer).",
    )
    free_form: FreeFormRule = Field(
        "mbr", description="How a vote among free-form answers is taken: 'mbr' (the candidate "
        "most similar to the others, by chrF) or 'usc' (the model names the most consistent; "
        "one budgeted model call, MBR when it names none).",
    )

    @field_validator("sampler", mode="before")
    @classmethod
    def _build_sampler(cls, value: object) -> Strategy | None:
        """Built from a name or config; an object is taken as it is (the graph it belongs to
        is validated as a whole, naming paths from its root)."""
        if value is None or isinstance(value, Strategy):
            return value
        return strategies.build(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _format_is_for_own_chains(self) -> SampledStrategy:
        if self.sampler is not None and self.format != "words":
            raise ValueError(
                f"format {self.format!r} applies to this strategy's own chains, not a "
                "sampler's; set it on a sampler that samples its own chains (best_of_n or "
                "self_consistency)"
            )
        if self.format != "words" and self.answers != "extracted":
            raise ValueError(
                f"answers {self.answers!r} reads a chain's text as its answer, but format "
                f"{self.format!r} chains answer with what their program prints: use answers "
                "'extracted' with program chains"
            )
        return self

    def gives_logprobs(self) -> bool:
        return self.sampler.gives_logprobs() if self.sampler is not None else False

    async def _draw(self, problem: Problem, ctx: Run, *, logprobs: bool = False) -> Pool:
        """The candidates: ``n`` plain samples, or the pool of ``n`` sampler runs."""
        if self.sampler is None:
            chains = await sample_formatted(
                problem, ctx, n=self.n, sampling=self.sampling, extractor=self.extractor,
                system_prompt=self.system_prompt, chain_format=self.format,
                program=self.program, logprobs=logprobs, thinking=self.thinking,
            )
            return Pool(chains.candidates, chains.budget_exhausted, chains.exhausted_by)
        return await run_sampler(self.sampler, self.n, problem, ctx, pool=self.pool)

    async def _choose(
        self, problem: Problem, ctx: Run, candidates: list[Candidate], rule: SelectionRule
    ) -> Choice:
        """The final answer among ``candidates`` by ``rule``, read as ``answers`` says."""
        return await choose_answer(
            problem, candidates, rule, ctx,
            answers=self.answers, free_form=self.free_form, thinking=self.thinking,
        )


async def run_sampler(
    sampler: Strategy,
    runs: int,
    problem: Problem,
    ctx: Run,
    *,
    pool: Literal["selected", "all"] = "selected",
) -> Pool:
    """Run ``sampler`` ``runs`` times at once, each in a child run, and pool their
    candidates (see the module docstring)."""
    children = [ctx.child() for _ in range(runs)]
    results = await asyncio.gather(*(sampler.run(problem, child) for child in children))
    candidates: list[Candidate] = []
    origins: list[list[int]] = []
    for run, result in enumerate(results):
        picked = result.candidates if pool == "all" else [result.best] if result.best else []
        for candidate in picked:
            origins.append([run, candidate.index])
            candidates.append(dataclasses.replace(candidate, index=len(candidates)))
    cut = next((r for r in results if r.budget_exhausted), None)
    return Pool(
        candidates,
        budget_exhausted=cut is not None,
        exhausted_by=cut.exhausted_by if cut is not None else None,
        details={
            "pooled_from": origins,
            "sampler_runs": [_run_summary(result) for result in results],
        },
    )


def _run_summary(result: Result) -> dict[str, Any]:
    return {
        "answer": result.answer,
        "selected_index": result.selected_index,
        "candidates": len(result.candidates),
        "generated_tokens": result.usage.generated_tokens,
        "budget_exhausted": result.budget_exhausted,
    }
