"""Finding a strategy graph: walk the part-holding fields of a strategy, its parts' fields,
and so on, into a networkx DiGraph.

Nodes are keyed by their path (``strategy.sampler.verifier``, as config keys read), so a part shared by
two holders appears once per place it is used, as a tree. A node's attributes: ``part`` (the
object; None for a required part that is missing), ``kind``, ``label`` (its registry name),
``role`` (the field that holds it), ``slot`` (what that field allows) and ``depth``. Edges
go from holder to part, with the ``role``. A part that holds itself, directly or further
down, is a cycle: discovery stops there with an error naming the path.
"""

from __future__ import annotations

import networkx as nx
from pydantic import BaseModel

from ponder.errors import BadRequestError
from ponder.graph.parts import ROOT, Slot, kind_of, label_of, slots


def discover(root: BaseModel) -> nx.DiGraph:
    """The graph of ``root`` and every part under it; ``graph.graph["root"]`` is its path."""
    graph = nx.DiGraph()
    path = ROOT
    graph.graph["root"] = path
    _add(graph, path, root, role=None, slot=None, depth=0)
    _walk(graph, root, path, ancestors=((root, path),))
    return graph


def _walk(
    graph: nx.DiGraph, holder: BaseModel, path: str, ancestors: tuple[tuple[object, str], ...]
) -> None:
    for slot in slots(type(holder)):
        part = getattr(holder, slot.field, None)
        if part is None and slot.optional:
            continue
        child = f"{path}.{slot.field}"
        for ancestor, where in ancestors:
            if part is ancestor:
                raise BadRequestError(
                    f"invalid strategy graph: {child}: cycle: this part is {where}, which holds it"
                )
        _add(graph, child, part, role=slot.field, slot=slot, depth=len(ancestors))
        graph.add_edge(path, child, role=slot.field)
        if isinstance(part, BaseModel):
            _walk(graph, part, child, (*ancestors, (part, child)))


def _add(
    graph: nx.DiGraph, path: str, part: object, *, role: str | None, slot: Slot | None, depth: int
) -> None:
    graph.add_node(
        path,
        part=part,
        kind=None if part is None else kind_of(part),
        label="(missing)" if part is None else label_of(part) if isinstance(part, BaseModel)
        else repr(part),
        role=role,
        slot=slot,
        depth=depth,
    )
