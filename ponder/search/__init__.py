"""Reusable search machinery: the reasoning tree, step expansion, step scoring. Search
strategies (beam, DVTS, particle filtering, A*) are built from these; they choose their final
answer with ``ponder.verifiers.selection``."""

from ponder.search.expansion import Expansion, Rollout, StepConfig, expand, rollout
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.tree import NODE_STATUSES, ROOT, Node, NodeStatus, SearchTree

__all__ = [
    "NODE_STATUSES",
    "ROOT",
    "Expansion",
    "Node",
    "NodeStatus",
    "Rollout",
    "SearchTree",
    "StepConfig",
    "expand",
    "path_candidate",
    "rollout",
    "score_nodes",
]
