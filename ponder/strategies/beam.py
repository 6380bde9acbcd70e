"""Step-level beam search with a step scorer (Snell et al., 2024; search-and-learn).

``n`` paths are searched step by step. The root is expanded ``n`` times; each later step
keeps the ``n / beam_width`` best open nodes by their step score and expands each of them
``beam_width`` times, so every step generates ``n`` nodes, all submitted at once. Paths that
end (EOS, or the chain's token limit) become candidates; the search stops once ``n`` paths
have ended, nothing is left open, the budget runs out, or after ``max_steps`` steps (the
last step runs every open path to the end of its answer). The final answer is chosen among
the ended paths by ``selection``.

Options: ``lookahead`` rolls each open node out greedily for k more steps and scores the
node on that roll-out (the roll-out is only for scoring; its tokens are charged);
``drop_duplicates`` prunes a node whose step repeats a sibling's, before it is scored.
Ties between equal scores go to the older node (smaller id), never to chance.

Composition: ``step_generator`` says who writes the steps (``ponder.search.writers``):
``sample`` (the default) samples them from the base model, ``n`` children of a parent in one
request; ``speculative`` has a draft model write each child, the base model rating and
rewriting it. ``step`` says where a step ends either way, and the ``verifier`` is the step
scorer.

``StepSearch`` is the shared loop; a subclass says how the search starts and which nodes
survive a step (DVTS: the best child in each independent subtree).
"""

from __future__ import annotations

import abc
from typing import Any

from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.search.expansion import rollout
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.thinking import count_candidate_thinking
from ponder.search.tree import ROOT, Node, SearchTree, prune_repeats
from ponder.strategies.base import strategies
from ponder.strategies.step_search import StepSearchStrategy
from ponder.verifiers.selection import SelectionRule, select


class StepSearch(StepSearchStrategy):
    """A search over reasoning steps that keeps ``n`` paths in play, ``beam_width`` children
    per expanded node. Subclasses implement ``_start`` and ``_survivors``."""

    n: int = Field(8, ge=1, le=1024, description="Paths searched: nodes generated per step.")
    beam_width: int = Field(4, ge=1, description="Children of each expanded node per step.")
    max_steps: int = Field(8, ge=1, description="Most steps; the last runs paths to their end.")
    lookahead: int = Field(0, ge=0, description="Greedy steps rolled out to score a node.")
    drop_duplicates: bool = Field(True, description="Prune a step that repeats a sibling's.")
    selection: SelectionRule = Field(
        "weighted", description="Final answer among the ended paths: argmax (the top-scored), "
        "majority, or weighted (sum of scores per answer); see ponder.verifiers.selection."
    )

    @model_validator(mode="after")
    def _width_divides_n(self) -> StepSearch:
        if self.n % self.beam_width:
            raise ValueError(
                f"beam_width must divide n (n / beam_width nodes are kept per step), got "
                f"n={self.n}, beam_width={self.beam_width}"
            )
        return self

    @property
    def kept(self) -> int:
        """Nodes kept per step (beam search) or independent subtrees (DVTS)."""
        return self.n // self.beam_width

    @abc.abstractmethod
    def _start(self) -> tuple[list[int], int]:
        """The first step's parents and how many children each gets."""

    @abc.abstractmethod
    def _survivors(
        self, tree: SearchTree, parents: list[int], groups: list[list[Node]]
    ) -> list[int]:
        """The open nodes to expand next, given each parent's scored children (aligned with
        ``parents``); prunes the open children that do not survive."""

    def _done(self, tree: SearchTree) -> bool:
        """Whether enough paths have ended to stop early."""
        return False

    async def run(self, problem: Problem, ctx: Run) -> Result:
        tree = self.tree(problem, ctx)
        writer = await self.writer(problem, tree, ctx)
        parents, fanout = self._start()
        steps = expanded = 0
        cut_by: str | None = None
        while parents and steps < self.max_steps and not self._done(tree):
            steps += 1
            expansion = await writer.grow(parents, n=fanout, to_end=steps == self.max_steps)
            expanded += sum(1 for group in expansion.children if group)
            groups = expansion.children
            if self.drop_duplicates:
                for group in groups:
                    prune_repeats(tree, group)
            fresh = [node.id for group in groups for node in group if node.status != "pruned"]
            await self._score(tree, fresh, problem, ctx)
            parents, fanout = self._survivors(tree, parents, groups), self.beam_width
            if expansion.budget_exhausted or ctx.ledger.exhausted:
                cut_by = expansion.exhausted_by or ctx.ledger.exhausted_by
                break
        return self._result(tree, cut_by, steps, expanded, ctx)

    async def _score(
        self, tree: SearchTree, node_ids: list[int], problem: Problem, ctx: Run
    ) -> None:
        """Score the step's new nodes in one batch, open ones on their roll-outs if asked."""
        rollouts = None
        open_ids = [i for i in node_ids if tree.node(i).status == "open"]
        if self.lookahead and open_ids:
            rollouts = await rollout(
                tree, open_ids, ctx, steps=self.lookahead, step=self.step, sampling=self.sampling,
                logprobs=self.verifier.needs_logprobs,
            )
        await score_nodes(tree, node_ids, problem, self.verifier, ctx, rollouts=rollouts)

    def _result(
        self, tree: SearchTree, cut_by: str | None, steps: int, expanded: int, ctx: Run
    ) -> Result:
        ended = tree.nodes("finished")
        # Cut short before any path ended: the open paths are the best there is.
        paths = ended or (tree.frontier() if cut_by else [])
        candidates = [
            path_candidate(tree, node.id, index, self.extractor) for index, node in enumerate(paths)
        ]
        count_candidate_thinking(candidates, self.thinking, ctx.decode)
        selected, evidence = select(candidates, self.selection)
        details: dict[str, Any] = {
            "steps": steps,
            "nodes_expanded": expanded,
            "nodes": len(tree) - 1,
            "finished": len(ended),
            "pruned": len(tree.nodes("pruned")),
            "candidate_nodes": [node.id for node in paths],
            **evidence,
        }
        return ctx.result(
            self.name, candidates, selected,
            cut=cut_by is not None, exhausted_by=cut_by, details=details, tree=tree,
        )


def best_first(nodes: list[Node]) -> list[Node]:
    """Scored nodes, best first; equal scores: the older node (smaller id) first."""
    scored = [n for n in nodes if n.score is not None]
    return sorted(scored, key=lambda n: (-n.score, n.id))  # type: ignore[operator]


@strategies.register("beam")
class BeamSearch(StepSearch):
    name = "beam"

    def _start(self) -> tuple[list[int], int]:
        return [ROOT], self.n

    def _survivors(
        self, tree: SearchTree, parents: list[int], groups: list[list[Node]]
    ) -> list[int]:
        candidates = [n for group in groups for n in group if n.status == "open"]
        kept = [n.id for n in best_first(candidates)[: self.kept]]
        for node in candidates:
            if node.id not in kept:
                tree.prune(node.id, f"not among the {self.kept} best of its step")
        return kept

    def _done(self, tree: SearchTree) -> bool:
        return len(tree.nodes("finished")) >= self.n
