"""Tree of Thoughts, depth-first (Yao et al., 2023, "ToT-DFS"): follow the best thought, prune
the doubtful ones, backtrack when a branch dies out.

A state is expanded into ``k`` children (one request) and each child is scored by the step
scorer. Children scoring below ``threshold`` are pruned (a finished one is rejected: it is
no solution); the others are visited best first, so the search goes deep along the best
child and returns to the next-best sibling (or an ancestor's) only when everything below
has been pruned or has ended: that is the backtracking. The search stops once ``solutions``
finished paths scored at least ``threshold``, after ``max_expansions`` expansions, when
nothing is left to visit, or when the budget ends it. A state one step short of
``max_depth`` is expanded to the end of its answer.

Breadth-first Tree of Thoughts (keep the best states of every depth) is the ``beam``
strategy. Ties between equal scores go to the older node.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.thinking import count_candidate_thinking
from ponder.search.tree import ROOT, Node, SearchTree, prune_repeats
from ponder.strategies.base import strategies
from ponder.strategies.beam import best_first
from ponder.strategies.step_search import StepSearchStrategy
from ponder.verifiers.selection import SelectionRule, select


@strategies.register("tot_dfs")
class TreeOfThoughtsDFS(StepSearchStrategy):
    name = "tot_dfs"

    k: int = Field(3, ge=1, le=256, description="Children per expanded state (one request).")
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A child scoring below this is pruned (rejected)."
    )
    max_depth: int = Field(8, ge=1, description="Most steps; the last runs to the answer's end.")
    solutions: int = Field(1, ge=1, description="Stop after this many accepted finished paths.")
    max_expansions: int = Field(32, ge=1, description="Most states expanded.")
    selection: SelectionRule = Field(
        "argmax", description="Final answer among the accepted paths: argmax, majority or "
        "weighted; see ponder.verifiers.selection.",
    )

    async def run(self, problem: Problem, ctx: Run) -> Result:
        tree = self.tree(problem, ctx)
        writer = await self.writer(problem, tree, ctx)
        stack, expanded, accepted = [ROOT], [], []
        backtracks, cut_by, cut = 0, None, False
        while stack and len(accepted) < self.solutions and len(expanded) < self.max_expansions:
            state = stack.pop()
            if expanded and tree.node(state).parent != expanded[-1]:
                backtracks += 1  # not a child of the last state: the search went back up
            expanded.append(state)
            to_end = tree.node(state).depth + 1 >= self.max_depth
            expansion = await writer.grow([state], n=self.k, to_end=to_end)
            children = expansion.children[0]
            prune_repeats(tree, children)
            kept = await self._score_and_prune(tree, children, problem, ctx)
            accepted += [n.id for n in kept if n.status == "finished"]
            # The best child goes on top of the stack: it is visited first.
            stack += [n.id for n in reversed(kept) if n.status == "open"]
            if expansion.budget_exhausted or ctx.ledger.exhausted:
                cut, cut_by = True, expansion.exhausted_by or ctx.ledger.exhausted_by
                break
        return self._result(tree, accepted, expanded, backtracks, cut, cut_by, ctx)

    async def _score_and_prune(
        self, tree: SearchTree, children: list[Node], problem: Problem, ctx: Run
    ) -> list[Node]:
        """Score the new children; those at or above the threshold, best first."""
        fresh = [n.id for n in children if n.status != "pruned"]
        await score_nodes(tree, fresh, problem, self.verifier, ctx)
        ranked = best_first([tree.node(i) for i in fresh])
        for node in ranked:
            if node.score < self.threshold:  # type: ignore[operator]
                tree.prune(node.id, f"scored below the threshold {self.threshold}")
                if node.status == "finished":
                    node.meta["rejected"] = True
        return [n for n in ranked if n.score >= self.threshold]  # type: ignore[operator]

    def _result(
        self, tree: SearchTree, accepted: list[int], expanded: list[int], backtracks: int,
        cut: bool, cut_by: str | None, ctx: Run,
    ) -> Result:
        # No accepted path: the rejected ended ones, else the best open states, are what is left.
        ids = accepted or [n.id for n in tree.nodes("finished")] or [
            n.id for n in best_first(tree.frontier())[:1]
        ]
        candidates = [path_candidate(tree, i, index, self.extractor) for index, i in enumerate(ids)]
        count_candidate_thinking(candidates, self.thinking, ctx.decode)
        selected, evidence = select(candidates, self.selection)
        details: dict[str, Any] = {
            "expanded": expanded,
            "backtracks": backtracks,
            "accepted": accepted,
            "nodes": len(tree) - 1,
            "pruned": len(tree.nodes("pruned")),
            "candidate_nodes": ids,
            **evidence,
        }
        return ctx.result(
            self.name, candidates, selected, cut=cut, exhausted_by=cut_by, details=details,
            tree=tree,
        )
