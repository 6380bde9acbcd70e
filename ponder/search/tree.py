"""The reasoning tree: every step a search generated, as a networkx ``DiGraph``.

Each node holds only its own step's token ids; the root holds the prompt's ids. A node's
full prefix is the concatenation of its ancestors' ids and its own, exactly as the engine
generated them, so a child is continued from ids and never from re-rendered text (the
engine's prefix cache then serves the shared part).

A node is ``open`` (can be expanded), ``finished`` (its path ended: end of answer or the
chain's token limit) or ``pruned`` (dropped by the search: not selected, unscorable, a
duplicate, cut by the clock). ``cost`` is the tokens generated for the node: its own step
plus any look-ahead roll-out spent to score it, so the costs of a tree add up to what its
expansions generated.

Node ids are integers in creation order (the root is 0), so ties broken by id are broken
by age, never at random. The tree exports to JSON (``to_dict``/``to_json``, reloaded by
``from_dict``/``from_json`` to an equal tree) and to GraphML (``write_graphml`` /
``read_graphml``), where attributes that are not numbers (token ids, texts, lists) are
stored as JSON strings so any GraphML reader can load them and the round trip is exact.
Numbers in ``meta`` (a search's visit counts, values, priors) are also written as plain
numeric attributes (``meta.visits``), so a graph tool can size or colour nodes by them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from ponder.core.generation import FinishReason
from ponder.errors import BadRequestError

NodeStatus = Literal["open", "finished", "pruned"]
NODE_STATUSES: tuple[str, ...] = ("open", "finished", "pruned")

ROOT = 0
"""The root's id: the prompt."""


@dataclass
class Node:
    """One reasoning step (the root: the prompt). Fields a search fills in as it learns them."""

    id: int
    parent: int | None
    depth: int
    """Steps from the root (the root is 0)."""
    token_ids: tuple[int, ...]
    """This step's ids exactly as generated (the root: the prompt's ids)."""
    text: str = ""
    """This step's text, decoded from ``token_ids``."""
    status: NodeStatus = "open"
    finish_reason: FinishReason | None = None
    """How the engine ended this step's request (``stop``, ``length``, ``aborted``)."""
    stop_reason: str | int | None = None
    """The stop string or token id that ended the step, if one did (None at EOS)."""
    logprobs: tuple[float, ...] | None = None
    """Logprob of each generated token, when the search asked for them."""
    score: float | None = None
    """The step scorer's score of the path ending here (None: not scored or unscorable)."""
    step_scores: tuple[float | None, ...] | None = None
    """A process verifier's scores of every step of the path."""
    score_reason: str | None = None
    """Why the node has the score (or status) it has, when that is worth saying."""
    answer: str | None = None
    """The answer extracted from the path's text, for finished nodes."""
    cost: int = 0
    """Tokens generated for this node: its step, plus look-ahead tokens spent to score it."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Strategy-specific JSON values (a subtree index, a particle weight, a priority)."""

    def __post_init__(self) -> None:
        if self.status not in NODE_STATUSES:
            raise BadRequestError(f"status must be one of {NODE_STATUSES}, got {self.status!r}")
        self.token_ids = tuple(self.token_ids)
        if self.logprobs is not None:
            self.logprobs = tuple(self.logprobs)
        if self.step_scores is not None:
            self.step_scores = tuple(self.step_scores)
        if self.score is not None:
            self.score = float(self.score)  # one type per attribute, as GraphML needs

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean_logprob(self) -> float | None:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("token_ids", "logprobs", "step_scores"):
            if data[name] is not None:
                data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        known = {f.name for f in fields(cls)}
        if unknown := set(data) - known:
            raise BadRequestError(f"node {data.get('id')!r} has unknown fields: {sorted(unknown)}")
        return cls(**data)


_NUMBER_FIELDS = frozenset({"id", "parent", "depth", "cost", "score"})
"""Node fields written to GraphML as numbers."""
_NAME_FIELDS = frozenset({"status", "finish_reason"})
"""Node fields written as plain strings (they hold fixed names); every other field is a JSON
string, which keeps control characters and lists exact through XML."""
_META_NUMBER = "meta."
"""Prefix of the GraphML attributes that repeat a number of ``meta`` (MCTS visits, values,
priors; A*'s f) as a plain number; ``meta`` itself stays the exact JSON copy."""


class SearchTree:
    """A tree of reasoning steps over ``graph`` (a ``networkx.DiGraph``, edges parent ->
    child, each node's ``Node`` under the attribute ``"node"``)."""

    def __init__(self, prompt_token_ids: Sequence[int], prompt_text: str = "") -> None:
        if not prompt_token_ids:
            raise BadRequestError("prompt_token_ids must not be empty: the root holds the prompt")
        self.graph: nx.DiGraph = nx.DiGraph()
        root = Node(ROOT, parent=None, depth=0, token_ids=tuple(prompt_token_ids), text=prompt_text)
        self._add(root)

    # -- building -------------------------------------------------------------------------
    def add_child(
        self,
        parent: int,
        token_ids: Sequence[int],
        text: str,
        *,
        status: NodeStatus = "open",
        finish_reason: FinishReason | None = None,
        stop_reason: str | int | None = None,
        logprobs: Sequence[float] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Node:
        """A new step under ``parent``; its cost starts as its own token count."""
        above = self.node(parent)
        node = Node(
            id=self.graph.number_of_nodes(),
            parent=parent,
            depth=above.depth + 1,
            token_ids=tuple(token_ids),
            text=text,
            status=status,
            finish_reason=finish_reason,
            stop_reason=stop_reason,
            logprobs=None if logprobs is None else tuple(logprobs),
            cost=len(token_ids),
            meta=dict(meta or {}),
        )
        self._add(node)
        return node

    def prune(self, node_id: int, reason: str | None = None) -> None:
        """Drop an open node from the search (finished and pruned nodes stay as they are)."""
        node = self.node(node_id)
        if node.status == "open":
            node.status = "pruned"
            if reason is not None:
                node.score_reason = reason

    def _add(self, node: Node) -> None:
        self.graph.add_node(node.id, node=node)
        if node.parent is not None:
            self.graph.add_edge(node.parent, node.id)

    # -- reading --------------------------------------------------------------------------
    @property
    def root(self) -> Node:
        return self.node(ROOT)

    def node(self, node_id: int) -> Node:
        try:
            return self.graph.nodes[node_id]["node"]
        except KeyError:
            raise BadRequestError(f"node {node_id!r} is not in the tree") from None

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __iter__(self) -> Iterator[Node]:
        """Every node, in creation order."""
        return (self.graph.nodes[i]["node"] for i in sorted(self.graph.nodes))

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.graph

    def nodes(self, status: NodeStatus | None = None) -> list[Node]:
        """Nodes in creation order, all or those with ``status``; the root is never listed."""
        return [n for n in self if not n.is_root and (status is None or n.status == status)]

    def children(self, node_id: int) -> list[Node]:
        return [self.node(i) for i in sorted(self.graph.successors(node_id))]

    def path(self, node_id: int) -> list[Node]:
        """The steps from the root's first child down to ``node_id`` (the root excluded)."""
        steps = []
        node = self.node(node_id)
        while not node.is_root:
            steps.append(node)
            node = self.node(node.parent)  # type: ignore[arg-type]
        return steps[::-1]

    def prefix(self, node_id: int) -> list[int]:
        """The full token ids ending at ``node_id``: the prompt, then every step's ids."""
        ids = list(self.root.token_ids)
        for step in self.path(node_id):
            ids.extend(step.token_ids)
        return ids

    def generated_ids(self, node_id: int) -> list[int]:
        """The path's generated ids (the prefix without the prompt)."""
        return [token for step in self.path(node_id) for token in step.token_ids]

    def generated_tokens(self, node_id: int) -> int:
        """How many tokens the path to ``node_id`` generated (the chain's length so far)."""
        return sum(step.num_tokens for step in self.path(node_id))

    def text(self, node_id: int) -> str:
        """The path's text: every step's text, in order (the prompt excluded)."""
        return "".join(step.text for step in self.path(node_id))

    def path_logprobs(self, node_id: int) -> list[float] | None:
        """Every generated token's logprob along the path; None when a step has none."""
        steps = self.path(node_id)
        if not steps or any(step.logprobs is None for step in steps):
            return None
        return [lp for step in steps for lp in step.logprobs or ()]

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes() if self.graph.out_degree(n.id) == 0]

    def frontier(self) -> list[Node]:
        """Open nodes not yet expanded (an expanded node stays ``open``: it has children)."""
        return [n for n in self.leaves() if n.status == "open"]

    def subtree(self, node_id: int) -> list[Node]:
        """``node_id`` and all its descendants, in creation order."""
        ids = {node_id} | nx.descendants(self.graph, node_id)
        return [self.node(i) for i in sorted(ids)]

    @property
    def total_cost(self) -> int:
        """Tokens generated over the whole tree (the prompt is not generated)."""
        return sum(n.cost for n in self.nodes())

    # -- export -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nodes in creation order (each names its parent, so edges are implied)."""
        return {"nodes": [node.to_dict() for node in self]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchTree:
        nodes = [Node.from_dict(dict(item)) for item in data.get("nodes", [])]
        if not nodes or not nodes[0].is_root or nodes[0].id != ROOT:
            raise BadRequestError("a tree's first node must be the root (id 0, no parent)")
        tree = cls.__new__(cls)
        tree.graph = nx.DiGraph()
        for node in nodes:
            if node.parent is not None and node.parent not in tree.graph:
                raise BadRequestError(
                    f"node {node.id} names parent {node.parent}, which does not come before it"
                )
            tree._add(node)
        return tree

    def to_json(self, **dumps: Any) -> str:
        return json.dumps(self.to_dict(), **dumps)

    @classmethod
    def from_json(cls, text: str) -> SearchTree:
        return cls.from_dict(json.loads(text))

    def graphml_graph(self) -> nx.DiGraph:
        """A copy of the graph with GraphML-safe attributes: numbers and names stay as they
        are, every other field is a JSON string, and fields that are None are left out."""
        flat = nx.DiGraph()
        for node in self:
            attributes = {}
            for name, value in node.to_dict().items():
                if value is None:
                    continue
                plain = name in _NUMBER_FIELDS or name in _NAME_FIELDS
                attributes[name] = value if plain else json.dumps(value)
            for key, value in node.meta.items():  # numbers again, for tools that colour by them
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    attributes[f"{_META_NUMBER}{key}"] = value
            flat.add_node(node.id, **attributes)
        flat.add_edges_from(self.graph.edges)
        return flat

    def write_graphml(self, path: str | Path) -> None:
        nx.write_graphml(self.graphml_graph(), str(path))

    @classmethod
    def read_graphml(cls, path: str | Path) -> SearchTree:
        graph = nx.read_graphml(str(path), node_type=int)
        nodes = []
        for node_id in sorted(graph.nodes):
            attributes = graph.nodes[node_id]
            data = {
                name: value if name in _NUMBER_FIELDS or name in _NAME_FIELDS else json.loads(value)
                for name, value in attributes.items()
                if not name.startswith(_META_NUMBER)  # copies of meta's numbers
            }
            data.setdefault("parent", None)
            nodes.append(data)
        return cls.from_dict({"nodes": nodes})

    # -- comparison ---------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchTree):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        counts = {status: len(self.nodes(status)) for status in NODE_STATUSES}
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if v)
        return f"SearchTree({len(self) - 1} steps{': ' + shown if shown else ''})"


def prune_repeats(tree: SearchTree, siblings: list[Node]) -> None:
    """Prune each open sibling whose step repeats an earlier one's ids (before scoring, so a
    repeat costs no verifier call and takes no search slot). Ended paths are kept: each is a
    separate sample of its answer."""
    first: dict[tuple[int, ...], int] = {}
    for node in siblings:
        if node.status != "open":
            continue
        if node.token_ids in first:
            tree.prune(node.id, f"repeats node {first[node.token_ids]}")
        else:
            first[node.token_ids] = node.id
