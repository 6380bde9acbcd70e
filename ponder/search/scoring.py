"""Scoring tree nodes with a step scorer: any ``Verifier``, usually a process verifier.

A node is scored as the path that ends at it: one ``Candidate`` per node, and all nodes of a
frontier in one verifier call, so a model-backed verifier batches them. A node's score is
the verifier's ``Score.value``: for a ``ProcessVerifier`` that is its aggregation of the
path's step scores (``last`` by default, i.e. the node's own step, as search-and-learn's
beam search ranks), for an outcome verifier its score of the path so far. For a process
verifier every step of the path is closed with the verifier's ``step_delimiter`` when it
does not already end with it (a step cut at the step token limit), so the verifier's steps
are the tree's steps and ``Node.step_scores`` has one score per step.

A node the verifier cannot score (``Score(None)``, or the verifier raising) stays unscored,
with the reason in ``score_reason``. If a batched call raises, each node is scored alone, so
one bad node cannot sink its frontier. An open node without a score is pruned: it cannot
be ranked. A finished one stays a candidate with no score (it takes no part in score-based
selection). Errors that no retry can fix, a dead engine or an invalid request, propagate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.errors import BackendDeadError, BadRequestError
from ponder.runtime import Run
from ponder.search.expansion import Rollout
from ponder.search.tree import SearchTree
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Score, Verifier
from ponder.verifiers.process import ProcessVerifier

log = logging.getLogger(__name__)


def path_candidate(
    tree: SearchTree, node_id: int, index: int, extractor: AnswerExtractor | None = None
) -> Candidate:
    """The path ending at ``node_id`` as a candidate (text, ids, logprobs, the node's score),
    with its answer extracted when an ``extractor`` is given (and kept on the node)."""
    node = tree.node(node_id)
    text = tree.text(node_id)
    if extractor is not None:
        node.answer = extractor.extract(text)
    return Candidate(
        index=index,
        text=text,
        num_tokens=tree.generated_tokens(node_id),
        finish_reason=node.finish_reason if node.status == "finished" else None,
        answer=node.answer,
        score=node.score,
        score_reason=node.score_reason,
        step_scores=node.step_scores,
        token_ids=tree.generated_ids(node_id),
        logprobs=tree.path_logprobs(node_id),
    )


async def score_nodes(
    tree: SearchTree,
    node_ids: Sequence[int],
    problem: Problem,
    verifier: Verifier,
    ctx: Run,
    *,
    rollouts: Mapping[int, Rollout] | None = None,
) -> list[Score]:
    """Score every node of ``node_ids`` in one verifier call and record the verdicts on the
    nodes; a node with a roll-out is scored on its path followed by the roll-out."""
    candidates = [
        _scored_candidate(tree, node_id, index, verifier, (rollouts or {}).get(node_id))
        for index, node_id in enumerate(node_ids)
    ]
    if not candidates:
        return []
    try:
        scores = await verifier.score(problem, candidates, ctx)
    except (BackendDeadError, BadRequestError):
        raise
    except Exception as exc:  # a scorer's own failure: find the node(s) it fails for
        name = type(verifier).__name__
        log.warning("step scorer %s failed on %d nodes at once: %r", name, len(candidates), exc)
        alone = (_score_alone(problem, candidate, verifier, ctx) for candidate in candidates)
        scores = list(await asyncio.gather(*alone))
    for node_id, score in zip(node_ids, scores):
        node = tree.node(node_id)
        node.score, node.step_scores, node.score_reason = score.value, score.steps, score.reason
        if score.value is None:
            tree.prune(node_id, score.reason or "the step scorer gave no score")
    return scores


async def _score_alone(
    problem: Problem, candidate: Candidate, verifier: Verifier, ctx: Run
) -> Score:
    try:
        return (await verifier.score(problem, [candidate], ctx))[0]
    except (BackendDeadError, BadRequestError):
        raise
    except Exception as exc:
        return Score(None, f"the step scorer failed: {exc!r}")


def _scored_candidate(
    tree: SearchTree, node_id: int, index: int, verifier: Verifier, rolled: Rollout | None
) -> Candidate:
    """What the verifier reads for ``node_id``: its path, steps closed for a process
    verifier, then the roll-out's text and logprobs when there is one."""
    candidate = path_candidate(tree, node_id, index)
    if isinstance(verifier, ProcessVerifier):
        delimiter = verifier.step_delimiter
        candidate.text = "".join(
            step.text if step.text.endswith(delimiter) else step.text + delimiter
            for step in tree.path(node_id)
        )
    if rolled is not None:
        candidate.text += rolled.text
        candidate.token_ids = candidate.token_ids + rolled.token_ids
        if candidate.logprobs is not None and rolled.logprobs is not None:
            candidate.logprobs = candidate.logprobs + rolled.logprobs
    return candidate
