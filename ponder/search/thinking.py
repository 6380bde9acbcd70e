"""Thinking tokens of a search tree: a step's thinking tokens are known only once the path
it belongs to is decoded, so search strategies count them after the search, per step, and
charge them to the run's ledger (pruned steps too: the engine generated them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ponder.core.result import Candidate
from ponder.core.thinking import ThinkingFormat
from ponder.core.usage import Usage
from ponder.runtime import Run
from ponder.search.tree import SearchTree

Decode = Callable[[Sequence[int]], str]


def step_thinking_tokens(tree: SearchTree, node_id: int, thinking: ThinkingFormat, decode: Decode) -> int:
    """Of ``node_id``'s own tokens, those before ``think_end`` in its path: the path's
    thinking tokens less its parent path's."""
    node = tree.node(node_id)
    before = thinking.split_tokens(tree.generated_ids(node.parent), decode)  # type: ignore[arg-type]
    return thinking.split_tokens(tree.generated_ids(node_id), decode) - before


def charge_thinking(tree: SearchTree, thinking: ThinkingFormat, ctx: Run) -> None:
    """Charge the thinking tokens of every step the tree holds to ``ctx``'s ledger."""
    total = sum(
        step_thinking_tokens(tree, node.id, thinking, ctx.backend.decode)
        for node in tree.nodes()
    )
    ctx.ledger.charge(Usage(thinking_tokens=total))


def count_candidate_thinking(candidates: Sequence[Candidate], thinking: ThinkingFormat, decode: Decode) -> None:
    """Set each candidate's ``thinking_tokens`` from its generated ids."""
    for candidate in candidates:
        candidate.thinking_tokens = thinking.split_tokens(candidate.token_ids, decode)
