"""Showing a strategy graph: an indented tree for the terminal and a PNG picture.

Each node shows its role (the field holding it), its registry name, and the settings that
differ from their defaults, so two graphs that differ only in a nested setting look different.
The picture is drawn with networkx on a matplotlib figure rendered by the Agg backend (no
display needed, no global pyplot state): nodes coloured by kind, laid out as a tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel

from ponder.graph.parts import slots

_COLOURS = {"strategy": "#9ecae1", "verifier": "#fdae6b", "step generator": "#a1d99b",
            "chain trimming": "#dadaeb", None: "#fc9272"}


def render_tree(graph: nx.DiGraph) -> str:
    """The graph as an indented tree, one part per line."""
    lines: list[str] = []

    def visit(path: str, prefix: str, last: bool, top: bool) -> None:
        node = graph.nodes[path]
        head = "" if top else prefix + ("└─ " if last else "├─ ")
        lines.append(head + _caption(node))
        children = list(graph.successors(path))
        inner = "" if top else prefix + ("   " if last else "│  ")
        for i, child in enumerate(children):
            visit(child, inner, i == len(children) - 1, False)

    visit(graph.graph["root"], "", True, True)
    return "\n".join(lines)


def draw_png(graph: nx.DiGraph, path: str | Path) -> Path:
    """Write the graph as a PNG picture at ``path`` (folders created); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    positions = _tree_layout(graph)
    width = max(4.0, 2.6 * (max(x for x, _ in positions.values()) + 1))
    height = max(2.5, 1.6 * (max(-y for _, y in positions.values()) + 1))
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = {p: _caption(n, wrap=True) for p, n in graph.nodes(data=True)}
    colours = [_COLOURS.get(n["kind"], "#dddddd") for _, n in graph.nodes(data=True)]
    nx.draw_networkx_edges(graph, positions, ax=axes, arrows=True, node_size=3000)
    nx.draw_networkx_nodes(graph, positions, ax=axes, node_color=colours, node_size=3000,
                           node_shape="s")
    nx.draw_networkx_labels(graph, positions, labels=labels, ax=axes, font_size=7)
    axes.set_axis_off()
    axes.margins(0.2)
    figure.tight_layout()
    figure.savefig(out, format="png", dpi=120)
    return out


def _caption(node: dict[str, Any], wrap: bool = False) -> str:
    role = f"{node['role']}: " if node["role"] else ""
    settings = _settings(node["part"]) if isinstance(node["part"], BaseModel) else []
    if wrap:
        return "\n".join([f"{role}{node['label']}", *settings[:4]])
    return " ".join([f"{role}{node['label']} ({node['kind'] or 'missing'})", *settings])


def _settings(part: BaseModel, prefix: str = "") -> list[str]:
    """``key=value`` for every setting of ``part`` that differs from its default (parts
    excluded: they are nodes of their own)."""
    held = {slot.field for slot in slots(type(part))}
    shown = []
    for name, info in type(part).model_fields.items():
        if name in held:
            continue
        value = getattr(part, name, None)
        if not info.is_required() and value == info.get_default(call_default_factory=True):
            continue
        if isinstance(value, BaseModel):
            shown += _settings(value, f"{prefix}{name}.")
        else:
            shown.append(f"{prefix}{name}={_short(value)}")
    return shown


def _short(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _tree_layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Leaves side by side left to right, each holder above the middle of its parts."""
    positions: dict[str, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(path: str) -> float:
        children = list(graph.successors(path))
        if children:
            x = sum(place(child) for child in children) / len(children)
        else:
            x, next_leaf[0] = next_leaf[0], next_leaf[0] + 1
        positions[path] = (x, -float(graph.nodes[path]["depth"]))
        return x

    place(graph.graph["root"])
    return positions
