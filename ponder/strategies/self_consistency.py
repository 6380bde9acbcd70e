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

Earlier chains (``vote_with``): chains sampled before the run, such as strategy 'auto''s probe
answers, can count as the first of the ``n``; only the rest are sampled, and all vote together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.runtime import Run
from ponder.strategies.base import strategies
from ponder.strategies.cot_trim import CoTTrim, TrimSettings
from ponder.strategies.pooling import Pool, SampledStrategy
from ponder.strategies.sampling import ChainFormat


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
        return await self.vote_with(problem, ctx, ())

    def takes_earlier_chains(self, chain_format: ChainFormat = "words") -> bool:
        """Whether chains of ``chain_format`` sampled elsewhere are like this strategy's own,
        so that they can vote with them: not when its candidates are a sampler's runs, trimmed
        chains or chains of another format."""
        return self.sampler is None and self.trim is None and self.format == chain_format

    async def vote_with(self, problem: Problem, ctx: Run, earlier: Sequence[Candidate],
                        earlier_format: ChainFormat = "words") -> Result:
        """The vote over ``earlier`` chains of ``earlier_format`` (their tokens spent before
        this call) and as many new ones as ``n`` lacks; none are sampled when ``earlier`` has
        ``n`` or more, and every earlier chain votes. ``details["earlier_chains"]`` counts
        them when there are any."""
        if earlier and not self.takes_earlier_chains(earlier_format):
            raise ValueError(f"earlier {earlier_format!r} chains vote only with a "
                             f"self-consistency that samples {earlier_format!r} chains itself "
                             f"(format {earlier_format!r}, no sampler, no trim)")
        missing = self.n - len(earlier)
        if missing > 0:
            pool = await self.model_copy(update={"n": missing})._draw(problem, ctx)
        else:
            pool = Pool([], budget_exhausted=False, exhausted_by=None)
        candidates = [dataclasses.replace(c, index=i)
                      for i, c in enumerate([*earlier, *pool.candidates])]
        choice = await self._choose(problem, ctx, candidates, "majority")
        details = {**choice.details, **pool.details}
        if earlier:
            details["earlier_chains"] = len(earlier)
        return ctx.result(
            self.name, candidates, choice.selected,
            cut=pool.budget_exhausted or choice.budget_refused, exhausted_by=pool.exhausted_by,
            details=details,
        )
