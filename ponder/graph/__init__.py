"""Strategy graphs: a strategy and the parts it holds (sub-strategies, verifiers, step
generators, chain trimming), found by walking its fields, validated before it runs, built
from Python or YAML, and drawn.

    from ponder.graph import load_graph, discover, render_tree, draw_png
    strategy = load_graph({"name": "self_consistency", "sampler": {"name": "short_mk"}})
    print(render_tree(discover(strategy)))
"""

from ponder.graph.discovery import discover
from ponder.graph.drawing import draw_png, render_tree
from ponder.graph.loading import graph_config, load_graph
from ponder.graph.validation import validate

__all__ = ["discover", "draw_png", "graph_config", "load_graph", "render_tree", "validate"]
