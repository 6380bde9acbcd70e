"""Validating a strategy graph before it runs: every check that needs more than one part.

Each rule looks at one node with its holder and returns what is wrong, naming the node's
path; ``validate`` collects them all into one ``BadRequestError``. The rules:

- a part must be of the kind its field takes (a sampler is a strategy: something that
  produces candidates; a step generator writes steps; a verifier scores);
- a required part must be present;
- a search strategy's verifier is its step scorer, so it must score partial paths;
- a verifier that reads token logprobs needs candidates or steps that carry them, which a
  sampler gives only when it asks for them, and a step generator never;
- self-consistency's chain trimming applies to its own chains, not a sampler's.

Cycles are found by ``discover`` itself (a walk into a cycle would never end).
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from ponder.errors import BadRequestError
from ponder.graph.discovery import discover
from ponder.graph.parts import KINDS, base_of
from ponder.strategies.base import Strategy
from ponder.verifiers.base import Verifier

Rule = Callable[[str, dict, dict | None], str | None]
"""``rule(path, node, holder)`` -> what is wrong at ``path``, or None."""


def validate(root: Strategy) -> nx.DiGraph:
    """The graph of ``root``, or a ``BadRequestError`` listing every problem found in it."""
    graph = discover(root)
    problems = []
    for path, node in graph.nodes(data=True):
        holders = list(graph.predecessors(path))
        holder = graph.nodes[holders[0]] if holders else None
        problems += [p for rule in RULES if (p := rule(path, node, holder)) is not None]
    if problems:
        raise BadRequestError("invalid strategy graph: " + "; ".join(problems))
    return graph


def _expected(node: dict) -> str:
    names = [_ROLE_KINDS.get(base_of(t), KINDS.get(base_of(t), t.__name__)) for t in node["slot"].types]
    return " or ".join(dict.fromkeys(names))


_ROLE_KINDS = {Strategy: "strategy (something that produces candidates)"}


def wrong_kind(path: str, node: dict, holder: dict | None) -> str | None:
    part, slot = node["part"], node["slot"]
    if slot is None or part is None or isinstance(part, slot.types):
        return None
    return f"{path}: {node['label']} is a {node['kind']}, but {slot.field} takes a {_expected(node)}"


def missing(path: str, node: dict, holder: dict | None) -> str | None:
    if node["slot"] is None or node["part"] is not None:
        return None
    return f"{path}: required part missing (a {_expected(node)})"


def step_scorer_scores_partial_paths(path: str, node: dict, holder: dict | None) -> str | None:
    part = node["part"]
    if holder is None or not isinstance(part, Verifier) or not _searches(holder["part"]):
        return None
    if part.scores_partial_paths or node["slot"].field != "verifier":  # others grade ends
        return None
    return (
        f"{path}: {node['label']} scores only finished answers, but a search's verifier is its "
        f"step scorer and must score partial paths (e.g. step_judge, prm, llm_judge)"
    )


def logprobs_available(path: str, node: dict, holder: dict | None) -> str | None:
    part = node["part"]
    if holder is None or not isinstance(part, Verifier) or not part.needs_logprobs:
        return None
    owner = holder["part"]
    sampler = getattr(owner, "sampler", None)
    if isinstance(sampler, Strategy) and not sampler.gives_logprobs():
        source = f"the candidates of its sampler ({sampler.name})"
    elif (generator := getattr(owner, "step_generator", None)) is not None and (
        generator.writes_per_child
    ):
        source = "steps written by its step generator"
    else:
        return None
    return (
        f"{path}: {node['label']} reads token logprobs, which {source} do not carry; "
        f"choose a verifier that reads the text (e.g. llm_judge, step_judge, reference_answer)"
    )


def trim_without_sampler(path: str, node: dict, holder: dict | None) -> str | None:
    if holder is None or node["role"] != "trim" or getattr(holder["part"], "sampler", None) is None:
        return None
    return f"{path}: trimming applies to the strategy's own chains, not its sampler's; trim inside the sampler"


def _searches(part: object) -> bool:
    return isinstance(part, Strategy) and part.scores_steps


RULES: tuple[Rule, ...] = (
    wrong_kind, missing, step_scorer_scores_partial_paths, logprobs_available, trim_without_sampler,
)
