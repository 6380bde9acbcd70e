"""Reusable search machinery: the reasoning tree, step expansion, step scoring, answer
selection. Search strategies (beam, DVTS, particle filtering, A*) are built from these."""

from ponder.search.expansion import Expansion, Rollout, StepConfig, expand, rollout
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.selection import SelectionRule, select
from ponder.search.tree import NODE_STATUSES, ROOT, Node, NodeStatus, SearchTree

__all__ = [
    "NODE_STATUSES",
    "ROOT",
    "Expansion",
    "Node",
    "NodeStatus",
    "Rollout",
    "SearchTree",
    "SelectionRule",
    "StepConfig",
    "expand",
    "path_candidate",
    "rollout",
    "score_nodes",
    "select",
]
