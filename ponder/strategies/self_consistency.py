"""Self-consistency (Wang et al., 2023): sample N chains, return the majority answer.

Equivalent answers ("42", "42.0", "$42$") vote together. Ties go to the group holding the
shortest chain, then to the earliest sample, so the result is deterministic.
"""

from __future__ import annotations

from pydantic import Field

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.strategies.base import Context, SamplingConfig, Strategy, strategies
from ponder.strategies.sampling import sample_chains
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.vote import majority_vote


@strategies.register("self_consistency")
class SelfConsistency(Strategy):
    name = "self_consistency"

    n: int = Field(8, ge=1, le=1024, description="Chains sampled (all submitted at once).")
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    async def run(self, problem: Problem, ctx: Context) -> Result:
        chains = await sample_chains(
            problem, ctx, n=self.n, sampling=self.sampling,
            extractor=self.extractor, system_prompt=self.system_prompt,
            thinking=self.thinking,
        )
        vote = majority_vote(
            [c.answer for c in chains.candidates], [c.num_tokens for c in chains.candidates]
        )
        return Result(
            strategy=self.name,
            candidates=chains.candidates,
            selected_index=vote.winner_index,
            usage=ctx.ledger.spent,
            budget_exhausted=chains.budget_exhausted,
            exhausted_by=chains.exhausted_by,
            details={"votes": vote.counts},
        )
