"""A new strategy in one file: sample n chains, answer with the shortest chain that gave one.

Short chains are right more often than long ones on reasoning models ("Don't Overthink It",
Hassid et al. 2025); this is the selection rule of short-m@k without the early stop. The run
(``ctx``) does all the metering: the chains are reserved before they are submitted, cut to
what the budget holds, and the result's usage and budget flags come from the run.

Run it: ``python examples/shortest_answer.py`` (the embedded model), or register it by
importing this module and name it in a config: ``{name: shortest_answer, n: 8}``.
"""

from __future__ import annotations

from pydantic import Field

import ponder
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.strategies import SamplingConfig, Strategy, strategies
from ponder.strategies.sampling import sample_chains
from ponder.verifiers import AnswerExtractor


@strategies.register("shortest_answer")
class ShortestAnswer(Strategy):
    """n chains in one request; the shortest one with an answer wins (ties: the earliest)."""

    name = "shortest_answer"

    n: int = Field(8, ge=1, le=256, description="Chains sampled at once.")
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    async def run(self, problem: Problem, ctx: Run) -> Result:
        chains = await sample_chains(
            problem, ctx, n=self.n, sampling=self.sampling, extractor=self.extractor,
            system_prompt=self.system_prompt, thinking=self.thinking,
        )
        answered = [c for c in chains.candidates if c.answer is not None]
        best = min(answered, key=lambda c: (c.num_tokens, c.index), default=None)
        return ctx.result(
            self.name, chains.candidates, best.index if best else None,
            cut=chains.budget_exhausted, exhausted_by=chains.exhausted_by,
        )


if __name__ == "__main__":  # vLLM starts its engine in a spawned process: keep this guard
    result = ponder.solve("What is 17 + 25?", strategy={"name": "shortest_answer", "n": 8})
    print(result.answer, len(result.candidates), result.usage.generated_tokens)
    ponder.shutdown()
