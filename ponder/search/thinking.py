"""Thinking tokens of a search tree: a step's thinking tokens are known only once the path
it belongs to is decoded, so they are counted per step as each step is added (pruned steps
too: the engine generated them) and per candidate path at the end."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ponder.core.result import Candidate
from ponder.core.thinking import ThinkingFormat
from ponder.search.tree import SearchTree

Decode = Callable[[Sequence[int]], str]


def step_thinking_tokens(tree: SearchTree, node_id: int, thinking: ThinkingFormat, decode: Decode) -> int:
    """Of ``node_id``'s own tokens, those before ``think_end`` in its path: the path's
    thinking tokens less its parent path's."""
    node = tree.node(node_id)
    before = thinking.split_tokens(tree.generated_ids(node.parent), decode)  # type: ignore[arg-type]
    return thinking.split_tokens(tree.generated_ids(node_id), decode) - before


def count_candidate_thinking(candidates: Sequence[Candidate], thinking: ThinkingFormat, decode: Decode) -> None:
    """Set each candidate's ``thinking_tokens`` from its generated ids."""
    for candidate in candidates:
        candidate.thinking_tokens = thinking.split_tokens(candidate.token_ids, decode)
