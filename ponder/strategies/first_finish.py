"""First Finish Search: start k chains, keep the first to finish (the shortest argument).

It is short-j@k with one difference: with j = 1 the earliest finisher is returned as it is,
even when no answer can be extracted from it, because the method trusts finishing order, not
agreement. With j > 1 the first j finishers vote as in short-m@k.
"""

from __future__ import annotations

from pydantic import Field

from ponder.core.result import Candidate
from ponder.strategies.base import strategies
from ponder.strategies.short_mk import FinishRace


@strategies.register("first_finish")
class FirstFinish(FinishRace):
    name = "first_finish"
    quorum_field = "j"

    j: int = Field(1, ge=1, le=1024, description="Earliest finishers kept; more than one vote.")

    def _select(self, voters: list[Candidate]) -> tuple[int | None, dict[str, float]]:
        winner, votes = super()._select(voters)
        if self.j == 1 and voters:
            winner = voters[0].index
        return winner, votes
