"""Monte Carlo tree search over reasoning steps, with parallel simulations (AlphaMath,
Chen et al., 2024; virtual loss as in AlphaGo).

A simulation descends from the root by PUCT or UCT (``selection_rule``) to a leaf, expands
it into ``k`` children with the step writer, evaluates every child and backs the children's
values up the path (``ponder.search.mcts``). A child's value is ``(1 - λ) * step score + λ *
roll-out grade`` (``rollout_weight`` is AlphaMath's λ): the step scorer's score of its path,
and the grade of a greedy roll-out to the end of the answer (at most ``max_depth`` steps and
the chain's token limit; a roll-out cut there is graded as it stands) by ``rollout_verifier``
(the step scorer when None). A node the scorer cannot value is pruned and never selected
again; a node whose children were all pruned is pruned in turn. A finished leaf is never
expanded: a simulation reaching it backs its value up again.

``parallel`` simulations run at once. Their descents claim their paths with virtual loss, so
they spread over distinct leaves; the expansions of all of them are submitted together (one
request per leaf, each a token-id prefix, so the prefix cache serves what they share), and
so are their step scores and roll-outs. Scoring comes before roll-outs, so a node the scorer
prunes costs no roll-out; work the budget's clock cuts is aborted in the engine and counted
as cancelled. A descent that reaches a leaf already claimed adds more virtual loss and
descends again; a wave holds fewer than ``parallel`` leaves when ``2 * parallel`` descents
found no more (the tree has too few open leaves yet, as at the start) or fewer simulations
are left.

The final answer: ``visits`` follows the most-visited children from the root (AlphaZero's
choice); ``argmax``, ``majority`` and ``weighted`` (``ponder.verifiers.selection``) choose
among the finished leaves with their values as weights. Visit counts, values and priors are
on every node's ``meta`` in the result's tree (and its JSON/GraphML exports) and in
``details["stats"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.search.expansion import rollout
from ponder.search.mcts import PriorSource, SelectionFormula, TreeStats, choose_child, priors
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.thinking import count_candidate_thinking
from ponder.search.tree import ROOT, Node, SearchTree, prune_repeats
from ponder.search.writers import StepWriter
from ponder.strategies.base import strategies
from ponder.strategies.step_search import StepSearchStrategy
from ponder.verifiers.base import Verifier, verifiers
from ponder.verifiers.selection import SelectionRule, select


@dataclass
class _Search:
    """One request's search state (never kept on the strategy, which requests share)."""

    tree: SearchTree
    stats: TreeStats = field(default_factory=TreeStats)
    simulations: int = 0
    waves: list[int] = field(default_factory=list)
    """Leaves expanded together in each wave."""
    exhausted_by: str | None = None
    cut: bool = False


@strategies.register("mcts")
class MCTS(StepSearchStrategy):
    name = "mcts"

    k: int = Field(4, ge=1, le=256, description="Children per expansion (one request).")
    simulations: int = Field(16, ge=1, description="Simulations in all (selections of a leaf).")
    parallel: int = Field(4, ge=1, description="Simulations in flight at once (virtual loss).")
    max_depth: int = Field(8, ge=1, description="Most steps; the last runs to the answer's end.")
    selection_rule: SelectionFormula = Field("puct", description="puct or uct.")
    c_puct: float = Field(
        1.0, ge=0.0, allow_inf_nan=False, description="Exploration weight (c of PUCT or UCT)."
    )
    prior: PriorSource = Field(
        "mean_logprob", description="PUCT's prior: mean_logprob, sum_logprob (the step's "
        "probability under the model), score (the step scorer's), uniform; normalised over "
        "siblings.",
    )
    rollout_weight: float = Field(
        0.0, ge=0.0, le=1.0, description="AlphaMath's lambda: value = (1 - lambda) * step score "
        "+ lambda * roll-out grade (0: no roll-outs; 1: no step scores).",
    )
    rollout_verifier: Verifier | None = Field(
        None, description="Grades roll-outs (an outcome verifier); None: the step scorer."
    )
    selection: SelectionRule | Literal["visits"] = Field(
        "visits", description="Final answer: visits (the most-visited path), argmax (the "
        "highest value), majority or weighted (a vote over finished leaves, weighted by value).",
    )

    @field_validator("rollout_verifier", mode="before")
    @classmethod
    def _build_rollout_verifier(cls, value: object) -> Verifier | None:
        return None if value is None else verifiers.build(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _consistent(self) -> MCTS:
        if self.parallel > self.simulations:
            raise ValueError(
                f"parallel must be at most simulations (simulations in flight cannot outnumber "
                f"all of them), got parallel={self.parallel}, simulations={self.simulations}"
            )
        if self.prior == "score" and self.rollout_weight == 1:
            raise ValueError(
                "prior 'score' needs step scores, which rollout_weight=1 skips: choose another "
                "prior or a rollout_weight below 1"
            )
        return self

    def needs_step_logprobs(self) -> bool:
        return self.prior in ("mean_logprob", "sum_logprob") or super().needs_step_logprobs()

    @property
    def grader(self) -> Verifier:
        return self.rollout_verifier or self.verifier

    async def run(self, problem: Problem, ctx: Run) -> Result:
        search = _Search(self.tree(problem, ctx))
        writer = await self.writer(problem, search.tree, ctx)
        while search.simulations < self.simulations and not search.cut:
            before = search.simulations
            paths, collided = self._claim(search, min(self.parallel, self.simulations - before))
            for path in collided:
                search.stats.release(path)  # their virtual loss only steered this wave's descents
            if not paths:
                if search.simulations > before:
                    continue  # every descent ended at a finished leaf and backed it up
                break  # nothing left to expand: every path ended or was pruned
            search.waves.append(len(paths))
            await self._simulate(search, paths, writer, problem, ctx)
        return self._result(search, ctx)

    # -- selection ------------------------------------------------------------------------
    def _claim(self, search: _Search, most: int) -> tuple[list[list[int]], list[list[int]]]:
        """Up to ``most`` simulations' paths to distinct open leaves, each claimed with
        virtual loss; a descent ending at a finished leaf backs its value up at once. A
        descent that reaches a leaf already claimed adds its virtual loss there too (so the
        next one turns elsewhere) and is the second list, released once the wave is claimed.
        At most ``2 * most`` descents are tried."""
        paths: list[list[int]] = []
        collided: list[list[int]] = []
        claimed: set[int] = set()
        for _ in range(2 * most):
            if len(paths) == most or search.simulations == self.simulations:
                break
            path = self._descend(search)
            if path is None:
                break
            search.stats.claim(path)
            if path[-1] in claimed:
                collided.append(path)
                continue
            search.simulations += 1
            if search.tree.node(path[-1]).status == "finished":
                search.stats.release(path)
                search.stats.backup(path, [search.stats[path[-1]].evaluation])  # type: ignore[list-item]
                continue
            claimed.add(path[-1])
            paths.append(path)
        return paths, collided

    def _descend(self, search: _Search) -> list[int] | None:
        """The path (root first) the selection rule takes to a leaf; None when the root has
        nothing left. A node whose children were all pruned is pruned on the way."""
        tree, stats = search.tree, search.stats
        path = [ROOT]
        while True:
            node = tree.node(path[-1])
            children = tree.children(node.id)
            if node.status == "finished" or not children:
                return path
            alive = [c for c in children if c.id in stats and c.status != "pruned"]
            if alive:
                path.append(choose_child(stats, node.id, alive, self.selection_rule, self.c_puct).id)
                continue
            if node.is_root:
                return None
            tree.prune(node.id, "every child was pruned")
            path = [ROOT]

    # -- expansion, evaluation, backup ------------------------------------------------------
    async def _simulate(
        self, search: _Search, paths: list[list[int]], writer: StepWriter, problem: Problem,
        ctx: Run,
    ) -> None:
        tree = search.tree
        leaves = [path[-1] for path in paths]
        groups: dict[int, list[Node]] = {}
        for to_end in (False, True):
            parents = [i for i in leaves if (tree.node(i).depth + 1 >= self.max_depth) == to_end]
            if not parents:
                continue
            expansion = await writer.grow(parents, n=self.k, to_end=to_end)
            groups.update(zip(parents, expansion.children))
            if expansion.budget_exhausted:
                search.cut, search.exhausted_by = True, expansion.exhausted_by
        for group in groups.values():
            prune_repeats(tree, group)
        fresh = [n.id for group in groups.values() for n in group if n.status != "pruned"]
        values = await self._evaluate(tree, fresh, problem, ctx)
        for path in paths:
            children = [n for n in groups.get(path[-1], []) if n.id in values]
            for child, prior in zip(children, priors(children, self.prior)):
                search.stats.evaluated(child.id, values[child.id], prior)
            search.stats.release(path)
            search.stats.backup(path, [values[child.id] for child in children])
        if ctx.ledger.exhausted or ctx.expired:
            search.cut = True
            search.exhausted_by = search.exhausted_by or ctx.ledger.exhausted_by

    async def _evaluate(
        self, tree: SearchTree, node_ids: list[int], problem: Problem, ctx: Run
    ) -> dict[int, float]:
        """Each new node's value; a node the step scorer or the grader cannot value gets
        none (and, when open, is pruned)."""
        weight = self.rollout_weight
        if weight < 1:
            await score_nodes(tree, node_ids, problem, self.verifier, ctx)
            node_ids = [i for i in node_ids if tree.node(i).score is not None]
        grades: dict[int, float | None] = {}
        if weight > 0 and node_ids:
            grades = await self._grade_rollouts(tree, node_ids, problem, ctx)
            node_ids = [i for i in node_ids if grades[i] is not None]
        return {
            i: (1 - weight) * (tree.node(i).score or 0.0) + weight * (grades.get(i) or 0.0)
            for i in node_ids
        }

    async def _grade_rollouts(
        self, tree: SearchTree, node_ids: list[int], problem: Problem, ctx: Run
    ) -> dict[int, float | None]:
        """Roll every open node out to the end (all at once) and grade path + roll-out; a
        finished node is graded on its path. The grade goes to ``meta["rollout_grade"]``; the
        node keeps its step score."""
        rolled = await rollout(
            tree, node_ids, ctx, steps=self.max_depth, step=self.step, sampling=self.sampling,
            logprobs=self.grader.needs_logprobs,
        )
        kept = {i: (n.score, n.step_scores, n.score_reason, n.status) for i in node_ids
                for n in [tree.node(i)]}
        scores = await score_nodes(tree, node_ids, problem, self.grader, ctx, rollouts=rolled)
        grades: dict[int, float | None] = {}
        for node_id, score in zip(node_ids, scores):
            node = tree.node(node_id)
            node.score, node.step_scores, node.score_reason, node.status = kept[node_id]
            node.meta["rollout_grade"] = grades[node_id] = score.value
            if score.value is None:
                tree.prune(node_id, score.reason or "the roll-out could not be graded")
        return grades

    # -- the answer ---------------------------------------------------------------------------
    def _result(self, search: _Search, ctx: Run) -> Result:
        tree, stats = search.tree, search.stats
        stats.write_to(tree)
        finished = tree.nodes("finished")
        # No path ended (the budget, or too few simulations): the open leaves are what there is.
        paths = finished or [n for n in tree.frontier() if n.id in stats]
        candidates = [path_candidate(tree, n.id, i, self.extractor) for i, n in enumerate(paths)]
        count_candidate_thinking(candidates, self.thinking, ctx.decode)
        weights = [stats[n.id].value if n.id in stats else None for n in paths]
        if self.selection == "visits":
            selected, evidence = self._most_visited(search, paths), {}
        else:
            selected, evidence = select(candidates, self.selection, weights=weights)
        details: dict[str, Any] = {
            "simulations": search.simulations,
            "waves": search.waves,
            "nodes": len(tree) - 1,
            "finished": len(finished),
            "pruned": len(tree.nodes("pruned")),
            "candidate_nodes": [n.id for n in paths],
            "candidate_values": weights,
            "stats": stats.table(),
            **evidence,
        }
        return ctx.result(
            self.name, candidates, selected, cut=search.cut, exhausted_by=search.exhausted_by,
            details=details, tree=tree,
        )

    def _most_visited(self, search: _Search, paths: list[Node]) -> int | None:
        """The candidate that shares the most of the most-visited path from the root (then
        more visits, a higher value, the older node)."""
        tree, stats = search.tree, search.stats
        route, node = {ROOT}, ROOT
        while alive := [c for c in tree.children(node) if c.id in stats and c.status != "pruned"]:
            node = min(alive, key=lambda c: (-stats[c.id].visits, -stats[c.id].value, c.id)).id
            route.add(node)

        def rank(index: int) -> tuple[int, int, float, int]:
            n = paths[index]
            shared = sum(1 for step in tree.path(n.id) if step.id in route)
            s = stats[n.id] if n.id in stats else None
            return (-shared, -(s.visits if s else 0), -(s.value if s else 0.0), n.id)

        return min(range(len(paths)), key=rank) if paths else None
