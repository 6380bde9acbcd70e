"""Diverse Verifier Tree Search (DVTS; Beeching, Tunstall & Rush, 2024): ``n / beam_width``
independent subtrees, each a greedy search on the step scorer.

The root is expanded ``beam_width`` times once per subtree (separate requests, all at once).
In every subtree, the best child of the step survives and is expanded ``beam_width`` times
at the next step; its siblings are pruned. Subtrees never compare scores with each other,
so one subtree's high-scoring but wrong line of reasoning cannot crowd out the others: that
is the diversity beam search lacks at large ``n``. A subtree ends when its best child ends
(EOS, the chain's token limit), when no child could be scored, or at ``max_steps`` (whose
step runs to the end of the answer). Every ended path is a candidate for ``selection``.
Each node records its subtree in ``meta["subtree"]``.
"""

from __future__ import annotations

from ponder.search.tree import ROOT, Node, SearchTree
from ponder.strategies.base import strategies
from ponder.strategies.beam import StepSearch, best_first


@strategies.register("dvts")
class DiverseVerifierTreeSearch(StepSearch):
    name = "dvts"

    def _start(self) -> tuple[list[int], int]:
        return [ROOT] * self.kept, self.beam_width

    def _survivors(
        self, tree: SearchTree, parents: list[int], groups: list[list[Node]]
    ) -> list[int]:
        survivors = []
        for position, (parent, group) in enumerate(zip(parents, groups)):
            subtree = tree.node(parent).meta.get("subtree", position)  # the root: one per request
            for node in group:
                node.meta["subtree"] = subtree
            ranked = best_first([n for n in group if n.status != "pruned"])
            best = ranked[0] if ranked else None
            for node in group:
                if node is not best:
                    tree.prune(node.id, f"not the best child in subtree {subtree}")
            if best is not None and best.status == "open":
                survivors.append(best.id)
        return survivors
