"""Step searches whose steps a step session writes (speculative reasoning: a draft model
writes, the base model rates and rewrites), instead of being sampled in one ``n``-sample
request per parent.

Every child of every parent is one ``next_step`` call of the session (the last step of a
search, ``to_end``, calls ``finish``: the base model runs the chain to the end of its answer),
and all of them run at once, so the engine batches them. Seeds are drawn in child order
before anything starts. The session charges the thinking part of what it wrote (rejected
drafts included). The search's ``step`` config says where a step ends, as for sampled steps;
a step that writes its answer marker ends its path. A node records who wrote its step in
``meta["author"]`` and the base model's rating in ``meta["rating"]``. A step the budget
refused adds no node and ends the search; a step the clock cut short is kept as a pruned
node (its tokens were spent).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ponder.core.sampling import SamplingConfig
from ponder.core.usage import Usage
from ponder.runtime import Run
from ponder.search.expansion import Expansion, StepConfig
from ponder.search.tree import ROOT, Node, NodeStatus, SearchTree

if TYPE_CHECKING:  # the step generators build expanders, so they import this module
    from ponder.strategies.step_generators import Prefix, Step, StepSession


class SessionExpander:
    """Grows one search tree with one run's step session; remembers each open node's prefix
    (in both vocabularies when the draft model's differs)."""

    def __init__(
        self,
        session: StepSession,
        tree: SearchTree,
        ctx: Run,
        sampling: SamplingConfig,
        step: StepConfig,
    ) -> None:
        self.session, self.tree, self.ctx, self.sampling = session, tree, ctx, sampling
        self.step = step
        self._prefixes: dict[int, Prefix] = {ROOT: session.root}

    async def grow(self, parents: Sequence[int], *, n: int, to_end: bool = False) -> Expansion:
        """Up to ``n`` children under each of ``parents``, every step written at once."""
        started = time.perf_counter()
        jobs = [(parent, self.ctx.next_seed()) for parent in parents for _ in range(n)]
        steps = await asyncio.gather(*(self._write(parent, seed, to_end) for parent, seed in jobs))
        children: list[list[Node]] = [[] for _ in parents]
        usage = Usage()
        refused = timed_out = False
        for (parent, _), step, position in zip(jobs, steps, (i // n for i in range(len(jobs)))):
            for spent in step.usage.values():
                usage.add(spent)
            refused = refused or step.cut == "budget"
            timed_out = timed_out or step.cut == "seconds"
            if step.cut != "budget":
                children[position].append(self._child(parent, step, to_end))
        usage.wall_seconds = time.perf_counter() - started
        cut = refused or timed_out
        return Expansion(
            parents=list(parents),
            children=children,
            usage=usage,
            budget_exhausted=cut,
            exhausted_by=(self.ctx.ledger.exhausted_by or "seconds") if cut else None,
            timed_out=timed_out,
        )

    async def _write(self, parent: int, seed: int, to_end: bool) -> Step:
        left = self.sampling.max_tokens - self.tree.generated_tokens(parent)
        write = self.session.finish if to_end else self.session.next_step
        return await write(self._prefixes[parent], max_tokens=left, seed=seed)

    def _child(self, parent: int, step: Step, to_end: bool) -> Node:
        status: NodeStatus
        reason = None
        if step.cut is not None:
            status, reason = "pruned", "cut short by the budget's clock"
        elif self.tree.generated_tokens(parent) + len(step.token_ids) >= self.sampling.max_tokens:
            status, reason = "finished", "reached the chain's token limit"
        elif to_end or step.ends_chain:
            status = "finished"
        elif self.step.writes_answer(step.text):
            status, reason = "finished", self.step.answer_reason
        else:
            status = "open"
        node = self.tree.add_child(
            parent,
            step.token_ids,
            step.text,
            status=status,
            finish_reason=step.finish_reason,
            meta={"author": step.author, "rating": step.rating},
        )
        node.score_reason = reason
        if status == "open":
            self._prefixes[node.id] = self._prefixes[parent].extend(step)
        return node
