"""Self-consistency (Wang et al., 2023): sample N chains, return the majority answer.

Equivalent answers ("42", "42.0", "$42$") vote together. Ties go to the group holding the
shortest chain, then to the earliest sample, so the result is deterministic.

Composition: with a ``sampler`` the candidates are the pooled results of ``n`` runs of another
strategy (``ponder.strategies.pooling``), e.g. a vote among ``n`` short-m@k winners. With
``trim`` each of the ``n`` chains is trimmed as it thinks (``ChainTrimmer``: probe-based early
exit and the thought judge) before it votes; the run is then CoT trimming's, configured with
this strategy's ``n``, sampling, extractor, prompt and thinking format, and its details are
CoT trimming's. ``trim`` applies to self-consistency's own chains, so it cannot be combined
with a sampler (trim inside the sampler instead).

Free-form answers (``answers``, ``free_form``; see ``ponder.strategies.pooling``): where the
candidates have no short answer to vote on, the vote is taken by minimum Bayes risk or
universal self-consistency over their texts, and ``details["chosen_by"]`` says which rule
chose.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.strategies.base import strategies
from ponder.strategies.cot_trim import CoTTrim, TrimSettings
from ponder.strategies.pooling import SampledStrategy


@strategies.register("self_consistency")
class SelfConsistency(SampledStrategy):
    name = "self_consistency"

    trim: TrimSettings | None = Field(
        None, description="Trim each chain's thinking before it votes; None: chains run whole."
    )

    @model_validator(mode="after")
    def _trim_fits(self) -> SelfConsistency:
        if self.trim is not None:
            if self.sampler is not None:
                raise ValueError(
                    "trim applies to self-consistency's own chains, not a sampler's; "
                    "trim inside the sampler (e.g. a cot_trim sampler) instead"
                )
            if self.format != "words":
                raise ValueError(
                    f"trim trims chains of thought; format {self.format!r} chains are "
                    "programs: use format 'words' with trim"
                )
            if self.answers != "extracted" or self.free_form != "mbr":
                raise ValueError(
                    "answers and free_form choose self-consistency's own vote; with trim the "
                    "vote is CoT trimming's: leave them at their defaults with trim"
                )
            self.trimmed(self.trim)  # its limits must fit this strategy's sampling
        return self

    def trimmed(self, trim: TrimSettings) -> CoTTrim:
        """CoT trimming with ``trim`` over this strategy's chains."""
        return CoTTrim(
            n=self.n, sampling=self.sampling, extractor=self.extractor,
            system_prompt=self.system_prompt, thinking=self.thinking, **dict(trim),
        )

    async def run(self, problem: Problem, ctx: Run) -> Result:
        if self.trim is not None:
            result = await self.trimmed(self.trim).run(problem, ctx)
            result.strategy = self.name
            return result
        pool = await self._draw(problem, ctx)
        choice = await self._choose(problem, ctx, pool.candidates, "majority")
        return ctx.result(
            self.name, pool.candidates, choice.selected,
            cut=pool.budget_exhausted or choice.budget_refused, exhausted_by=pool.exhausted_by,
            details={**choice.details, **pool.details},
        )
