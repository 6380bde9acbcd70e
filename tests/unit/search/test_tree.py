"""The reasoning tree: prefixes from ids, statuses, and exact JSON / GraphML round trips."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from ponder.errors import BadRequestError
from ponder.search.tree import ROOT, SearchTree


def small_tree() -> SearchTree:
    tree = SearchTree([1, 2, 3], prompt_text="Q")
    a = tree.add_child(ROOT, [10, 11], "a\n\n", finish_reason="stop", stop_reason="\n\n",
                       logprobs=[-0.25, -1.5])
    tree.add_child(ROOT, [12], "b", finish_reason="length")
    c = tree.add_child(a.id, [13, 14, 15], "c\r\x00\"<&>", status="finished", finish_reason="stop",
                       stop_reason=2, meta={"subtree": 1, "weights": [0.5, 0.25]})
    c.score, c.step_scores, c.answer, c.cost = 0.1 + 0.2, (None, 0.75), "12", 7
    tree.prune(2, reason="not among the best")
    return tree


def test_prefix_is_the_prompt_then_each_ancestors_ids() -> None:
    tree = small_tree()
    assert tree.prefix(3) == [1, 2, 3, 10, 11, 13, 14, 15]
    assert tree.generated_ids(3) == [10, 11, 13, 14, 15]
    assert tree.generated_tokens(3) == 5
    assert tree.prefix(ROOT) == [1, 2, 3]
    assert [n.id for n in tree.path(3)] == [1, 3]
    assert tree.text(3) == "a\n\nc\r\x00\"<&>"
    assert tree.node(3).depth == 2


def test_statuses_children_leaves_and_costs() -> None:
    tree = small_tree()
    assert [n.id for n in tree.nodes("open")] == [1]
    assert [n.id for n in tree.nodes("pruned")] == [2]
    assert tree.node(2).score_reason == "not among the best"
    assert [n.id for n in tree.children(ROOT)] == [1, 2]
    assert [n.id for n in tree.leaves()] == [2, 3]
    assert tree.total_cost == 2 + 1 + 7
    tree.prune(3)  # a finished node stays finished
    assert tree.node(3).status == "finished"


def test_path_logprobs_need_every_step_to_have_them() -> None:
    tree = small_tree()
    assert tree.path_logprobs(1) == [-0.25, -1.5]
    assert tree.path_logprobs(3) is None
    assert tree.node(1).mean_logprob == pytest.approx(-0.875)


def test_json_round_trip_gives_an_equal_tree() -> None:
    tree = small_tree()
    again = SearchTree.from_json(tree.to_json())
    assert again == tree
    assert again.prefix(3) == tree.prefix(3)
    assert again.node(3).meta == {"subtree": 1, "weights": [0.5, 0.25]}
    assert list(again.graph.edges) == list(tree.graph.edges)
    again.node(3).score = 0.5
    assert again != tree


def test_graphml_round_trip_is_exact_and_readable_by_networkx(tmp_path: Path) -> None:
    tree = small_tree()
    path = tmp_path / "tree.graphml"
    tree.write_graphml(path)
    again = SearchTree.read_graphml(path)
    assert again == tree
    assert again.node(3).text == "c\r\x00\"<&>"  # control characters survive the XML
    assert again.node(3).score == 0.1 + 0.2
    plain = nx.read_graphml(path)
    assert plain.nodes["3"]["status"] == "finished"
    assert json.loads(plain.nodes["3"]["token_ids"]) == [13, 14, 15]
    assert "score" not in plain.nodes["1"]  # None is left out, not written as a string


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nodes": []}, "first node must be the root"),
        ({"nodes": [{"id": 0, "parent": None, "depth": 0, "token_ids": [1]},
                    {"id": 1, "parent": 5, "depth": 1, "token_ids": [2]}]}, "parent 5"),
        ({"nodes": [{"id": 0, "parent": None, "depth": 0, "token_ids": [1], "colour": "red"}]},
         "unknown fields"),
        ({"nodes": [{"id": 0, "parent": None, "depth": 0, "token_ids": [1], "status": "done"}]},
         "status must be one of"),
    ],
    ids=["no-root", "unknown-parent", "unknown-field", "bad-status"],
)
def test_bad_exports_are_refused(data: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        SearchTree.from_dict(data)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(BadRequestError, match="prompt_token_ids"):
        SearchTree([])
    with pytest.raises(BadRequestError, match="node 9"):
        small_tree().node(9)
