"""A*-decoding (Chatziveroglou, 2025, arXiv:2505.13672): best-first search over partial
solutions, guided by a step scorer.

A state is the prompt plus the steps so far; expanding it samples ``k`` continuations (one
request, ``n=k``). States wait in a priority queue by ``f = cost_weight * g + heuristic_weight
* h``, lowest first: ``h = 1 - r(s)`` (the paper's heuristic, ``r`` the step scorer's score of
the path), ``g`` the sum of ``1 - r`` over the path's steps, so a path pays for every doubtful
step it took (``cost_weight=0``: greedy best-first). The search stops at the first finished
state popped (no open state has a lower ``f``), when nothing is open, or when the budget ends
it; ties go to the older state.

``width`` > 1 expands the ``width`` best open states per round, all submitted together (the
paper: 1): fuller engine rounds for a little less strictness in the order; a round stops at a
finished state, so a goal is never passed over. A state one step short of ``max_steps`` is
expanded to the end of its answer. A child repeating a sibling's ids is pruned before it is
scored. A round asks for no more children than the verifier calls left can score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.search.frontier import Frontier
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.thinking import count_candidate_thinking
from ponder.search.tree import ROOT, SearchTree, prune_repeats
from ponder.search.writers import StepWriter
from ponder.strategies.base import strategies
from ponder.strategies.step_search import StepSearchStrategy


@dataclass
class _Search:
    """One request's search state (never kept on the strategy, which requests share)."""

    tree: SearchTree
    frontier: Frontier[int] = field(default_factory=Frontier)
    expanded: list[int] = field(default_factory=list)
    """Node ids in the order they were expanded (the root first)."""
    goal: int | None = None
    exhausted_by: str | None = None
    budget_exhausted: bool = False

    def stop(self, exhausted_by: str | None) -> None:
        self.budget_exhausted = True
        self.exhausted_by = self.exhausted_by or exhausted_by


@strategies.register("astar")
class AStar(StepSearchStrategy):
    name = "astar"

    k: int = Field(4, ge=1, le=1024, description="Children per expanded state (one request).")
    width: int = Field(1, ge=1, le=256, description="States expanded per round (1: the paper).")
    max_steps: int = Field(8, ge=1, description="Most steps; the last runs to the answer's end.")
    cost_weight: float = Field(1.0, ge=0.0, allow_inf_nan=False, description="Weight of g.")
    heuristic_weight: float = Field(
        1.0, ge=0.0, allow_inf_nan=False, description="Weight of h = 1 - r(s) (the paper)."
    )

    @model_validator(mode="after")
    def _some_weight(self) -> AStar:
        if self.cost_weight == 0 and self.heuristic_weight == 0:
            raise ValueError(
                "cost_weight and heuristic_weight must not both be 0: every state would have "
                "priority 0 and the search would ignore the scorer"
            )
        return self

    async def run(self, problem: Problem, ctx: Run) -> Result:
        search = _Search(self.tree(problem, ctx))
        writer = await self.writer(problem, search.tree, ctx)
        search.tree.root.meta.update(g=0.0, f=0.0)
        search.frontier.push(ROOT, 0.0)
        while not self._goal_on_top(search) and not search.budget_exhausted:
            children = self._affordable_children(ctx)
            if children == 0:
                search.stop("verifier_calls")
                break
            parents = self._next_round(search, -(-children // self.k))
            if not parents:
                break  # nothing open is left to expand
            await self._expand(search, writer, _groups(parents, children, self.k), problem, ctx)
        self._goal_on_top(search)  # a goal on top when the budget ran out is still the goal
        return self._result(search, ctx)

    def _goal_on_top(self, search: _Search) -> bool:
        """A* stops when the state with the lowest f is finished: it is the goal."""
        top = search.frontier.peek()
        if top is not None and search.tree.node(top[0]).status == "finished":
            search.goal = top[0]
        return search.goal is not None

    def _next_round(self, search: _Search, most: int) -> list[int]:
        """The best open states, up to ``width`` (and ``most``), popped in priority order;
        the round ends at a finished state, which stays queued, so a goal is never passed
        over for a worse open state."""
        parents: list[int] = []
        while len(parents) < min(self.width, most) and (top := search.frontier.peek()) is not None:
            if search.tree.node(top[0]).status == "finished":
                break
            parents.append(search.frontier.pop()[0])
        return parents

    async def _expand(
        self,
        search: _Search,
        writer: StepWriter,
        groups: list[tuple[int, int]],
        problem: Problem,
        ctx: Run,
    ) -> None:
        """Grow each (parent, children) group, score every child in one verifier call and
        queue them by ``f``. Parents asking alike (children, to the end or not) grow in one
        call; such calls run one after another, so node ids follow the priority order."""
        tree = search.tree
        search.expanded.extend(parent for parent, _ in groups)
        calls: dict[tuple[int, bool], list[int]] = {}
        for parent, n in groups:
            calls.setdefault((n, tree.node(parent).depth + 1 >= self.max_steps), []).append(parent)
        expansions = [
            await writer.grow(parents, n=n, to_end=to_end) for (n, to_end), parents in calls.items()
        ]
        for group in (group for e in expansions for group in e.children):
            prune_repeats(tree, group)  # a repeated state would be scored and expanded twice
        new = [node.id for e in expansions for node in e.nodes if node.status != "pruned"]
        await score_nodes(tree, new, problem, self.verifier, ctx)
        for node_id in new:
            self._queue(search, node_id)
        cut = next((e for e in expansions if e.budget_exhausted), None)
        if cut is not None or ctx.ledger.exhausted:
            search.stop(cut.exhausted_by if cut is not None else None)  # else the ledger's

    def _affordable_children(self, ctx: Run) -> int:
        """Children to ask for this round: k per state for ``width`` states, capped by the
        verifier calls left (each child is scored once)."""
        wanted = self.width * self.k
        left = ctx.ledger.remaining("verifier_calls") if self.verifier.counts_as_call else None
        return wanted if left is None else min(wanted, int(left))

    def _queue(self, search: _Search, node_id: int) -> None:
        """Give a scored node its g, h and f and queue it; an unscored one cannot be ranked."""
        node = search.tree.node(node_id)
        if node.score is None:
            return
        cost = 1.0 - node.score
        g = search.tree.node(node.parent).meta["g"] + cost  # type: ignore[arg-type]
        f = self.cost_weight * g + self.heuristic_weight * cost
        node.meta.update(g=g, h=cost, f=f)
        search.frontier.push(node_id, f)

    def _result(self, search: _Search, ctx: Run) -> Result:
        tree = search.tree
        ranked = [node_id for node_id, _ in search.frontier.ordered()]
        finished = [n.id for n in tree.nodes("finished")]
        # Cut short before any path ended: the best open state is the best there is.
        paths = finished or ranked[:1]
        candidates = [path_candidate(tree, node_id, i, self.extractor) for i, node_id in enumerate(paths)]
        count_candidate_thinking(candidates, self.thinking, ctx.decode)
        best = search.goal if search.goal is not None else next(
            (node_id for node_id in ranked if node_id in paths), None
        )
        selected = paths.index(best) if best is not None else None
        details: dict[str, Any] = {
            "expansions": len(search.expanded),
            "expanded": search.expanded,
            "expanded_f": [round(tree.node(i).meta["f"], 6) for i in search.expanded],
            "goal": search.goal,
            "selected_f": None if best is None else tree.node(best).meta["f"],
            "nodes": len(tree) - 1,
            "finished": len(finished),
            "pruned": len(tree.nodes("pruned")),
            "candidate_nodes": paths,
        }
        return ctx.result(
            self.name, candidates, selected,
            cut=search.budget_exhausted and search.goal is None, exhausted_by=search.exhausted_by,
            details=details, tree=tree,
        )


def _groups(parents: list[int], children: int, k: int) -> list[tuple[int, int]]:
    """(parent, children to ask for): k each in priority order, the last one what is left
    of ``children`` (the caller pops no more parents than ``children`` reaches)."""
    return [(parent, min(k, children - i * k)) for i, parent in enumerate(parents)]
