"""Monte Carlo tree search over a ``SearchTree``: visit counts, values, priors, selection by
PUCT or UCT, virtual loss and backup of mean values.

The statistics live beside the tree (``TreeStats``), keyed by node id, so the tree stays the
record of what was generated and the statistics the record of what the search believed;
``write_to`` copies them onto the nodes' ``meta`` for the result's tree and its exports.

A node's value ``Q`` is the mean of every evaluation in its subtree: a node counts one visit
for its own evaluation and one for each evaluation below it (``N(s) = 1 + sum N(children)``,
the root has no evaluation of its own). Virtual loss counts a claimed path as visited with
value 0 until its simulation backs up, so descents made before then spread over other
leaves; with values in [0, 1] that is a loss, whatever the scorer. Ties between children go
to the older one (smaller id), never to chance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ponder.search.tree import ROOT, Node, SearchTree

SelectionFormula = Literal["puct", "uct"]
"""``puct``: Q + c * P * sqrt(N(parent)) / (1 + N) (AlphaZero); ``uct``: Q + c *
sqrt(ln N(parent) / N) (UCB1 applied to trees)."""
PriorSource = Literal["mean_logprob", "sum_logprob", "score", "uniform"]
"""Where a child's prior comes from: its step's mean or summed token logprob, or its step
score, normalised over its siblings (a softmax of the logprobs, a share of the scores)."""


@dataclass
class NodeStats:
    visits: int = 0
    value_sum: float = 0.0
    prior: float = 1.0
    evaluation: float | None = None
    """The node's own value when it was evaluated (None: the root, or not evaluated)."""
    virtual: int = 0
    """Visits claimed by simulations in flight, each counted with value 0."""

    @property
    def value(self) -> float:
        """Q: the mean evaluation in the subtree (0 when there is none yet)."""
        return self.value_sum / self.visits if self.visits else 0.0


@dataclass
class TreeStats:
    """Per node id, what the search has learnt; the nodes it holds are the evaluated ones
    (and the root)."""

    nodes: dict[int, NodeStats] = field(default_factory=lambda: {ROOT: NodeStats()})

    def __getitem__(self, node_id: int) -> NodeStats:
        return self.nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def evaluated(self, node_id: int, value: float, prior: float) -> None:
        """Record a new node's evaluation: one visit with ``value``."""
        self.nodes[node_id] = NodeStats(visits=1, value_sum=value, prior=prior, evaluation=value)

    def claim(self, path: Sequence[int]) -> None:
        """Virtual loss on every node of ``path`` (root first) while its simulation runs."""
        for node_id in path:
            self.nodes[node_id].virtual += 1

    def release(self, path: Sequence[int]) -> None:
        for node_id in path:
            self.nodes[node_id].virtual -= 1

    def backup(self, path: Sequence[int], values: Sequence[float]) -> None:
        """Add ``values`` (evaluations made below the end of ``path``) to every node of it."""
        for node_id in path:
            stats = self.nodes[node_id]
            stats.visits += len(values)
            stats.value_sum += sum(values)

    def write_to(self, tree: SearchTree) -> None:
        """Copy visits, value (Q), prior and evaluation onto each node's ``meta``."""
        for node_id, stats in self.nodes.items():
            tree.node(node_id).meta.update(
                visits=stats.visits, value=stats.value, prior=stats.prior,
                evaluation=stats.evaluation,
            )

    def table(self) -> list[dict[str, object]]:
        """One row per evaluated node (and the root), for a result's details."""
        return [
            {"id": node_id, "visits": s.visits, "value": s.value, "prior": s.prior}
            for node_id, s in sorted(self.nodes.items())
        ]


def choose_child(
    stats: TreeStats, parent: int, children: Sequence[Node], formula: SelectionFormula, c: float
) -> Node:
    """The child with the highest PUCT or UCT score, virtual loss included; ties: older."""
    above = stats[parent]
    parent_visits = above.visits + above.virtual

    def score(child: Node) -> float:
        s = stats[child.id]
        visits = s.visits + s.virtual
        q = s.value_sum / visits if visits else 0.0
        if formula == "puct":
            return q + c * s.prior * math.sqrt(parent_visits) / (1 + visits)
        if visits == 0:
            return math.inf
        return q + c * math.sqrt(math.log(max(parent_visits, 1)) / visits)

    return min(children, key=lambda child: (-score(child), child.id))


def priors(children: Sequence[Node], source: PriorSource) -> list[float]:
    """Each child's prior, normalised over ``children`` (siblings). Children without the
    signal (no logprobs, no score) share uniform priors."""
    if not children:
        return []
    uniform = [1.0 / len(children)] * len(children)
    if source == "uniform":
        return uniform
    if source == "score":
        scores = [child.score for child in children]
        if any(s is None for s in scores) or sum(scores) <= 0:  # type: ignore[arg-type]
            return uniform
        total = sum(scores)  # type: ignore[arg-type]
        return [s / total for s in scores]  # type: ignore[operator]
    logits = [
        (child.mean_logprob if source == "mean_logprob" else sum(child.logprobs or ()))
        if child.logprobs else None
        for child in children
    ]
    if any(logit is None for logit in logits):
        return uniform
    top = max(logits)  # type: ignore[type-var]
    weights = [math.exp(logit - top) for logit in logits]  # type: ignore[operator]
    return [w / sum(weights) for w in weights]
