"""Step-level beam search with a step scorer (Snell et al., 2024; search-and-learn).

``n`` paths are searched step by step. The root is expanded ``n`` times; each later step
keeps the ``n / beam_width`` best open nodes by their step score and expands each of them
``beam_width`` times, so every step generates ``n`` nodes, all submitted at once. Paths that
end (EOS, or the chain's token limit) become candidates; the search stops once ``n`` paths
have ended, nothing is left open, the budget runs out, or after ``max_steps`` steps (the
last step runs every open path to the end of its answer). The final answer is chosen among
the ended paths by ``selection``.

Options: ``lookahead`` rolls each open node out greedily for k more steps and scores the
node on that roll-out (the roll-out is only for scoring; its tokens are charged);
``drop_duplicates`` prunes a node whose step repeats a sibling's, before it is scored.
Ties between equal scores go to the older node (smaller id), never to chance.

Composition: ``step_generator`` says who writes the steps. None (the default) samples them
from the base model, ``n`` children of a parent in one request; a ``StepGenerator`` session
(``speculative``: a draft model writes, the base model rates and rewrites) writes each child
with its own calls (``ponder.strategies.session_expansion``). The ``verifier`` is the step
scorer either way.

``StepSearch`` is the shared loop; a subclass says how the search starts and which nodes
survive a step (DVTS: the best child in each independent subtree).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from typing import Any, Protocol

from pydantic import Field, field_validator, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.search.expansion import Expansion, StepConfig, expand, rollout
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.selection import SelectionRule, select
from ponder.search.thinking import charge_thinking, count_candidate_thinking
from ponder.search.tree import ROOT, Node, SearchTree, prune_repeats
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.session_expansion import SessionExpander
from ponder.strategies.step_generators import StepGenerator, step_generators
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Verifier, verifiers


class Grow(Protocol):
    """Adds up to ``n`` children under each parent (``to_end``: the search's last step)."""

    def __call__(self, parents: list[int], *, n: int, to_end: bool) -> Awaitable[Expansion]: ...


class StepSearch(Strategy):
    """A search over reasoning steps that keeps ``n`` paths in play, ``beam_width`` children
    per expanded node. Subclasses implement ``_start`` and ``_survivors``."""

    n: int = Field(8, ge=1, le=1024, description="Paths searched: nodes generated per step.")
    beam_width: int = Field(4, ge=1, description="Children of each expanded node per step.")
    max_steps: int = Field(8, ge=1, description="Most steps; the last runs paths to their end.")
    lookahead: int = Field(0, ge=0, description="Greedy steps rolled out to score a node.")
    drop_duplicates: bool = Field(True, description="Prune a step that repeats a sibling's.")
    step: StepConfig = StepConfig()
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()
    verifier: Verifier = Field(
        default_factory=lambda: verifiers.build("step_judge"),
        description="The step scorer; a registry name, a config with 'name', or an object.",
    )
    selection: SelectionRule = Field(
        "weighted", description="Final answer: highest score, majority, or score-weighted vote."
    )
    step_generator: StepGenerator | None = Field(
        None,
        description="Who writes each step: None samples them from the base model; a step "
        "generator config (name: sample or speculative) or object writes them instead.",
    )

    scores_steps = True

    @field_validator("verifier", mode="before")
    @classmethod
    def _build_verifier(cls, value: object) -> Verifier:
        return verifiers.build(value)  # type: ignore[arg-type]

    @field_validator("step_generator", mode="before")
    @classmethod
    def _build_step_generator(cls, value: object) -> StepGenerator | None:
        return None if value is None else step_generators.build(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _width_divides_n(self) -> StepSearch:
        if self.n % self.beam_width:
            raise ValueError(
                f"beam_width must divide n (n / beam_width nodes are kept per step), got "
                f"n={self.n}, beam_width={self.beam_width}"
            )
        return self

    @property
    def kept(self) -> int:
        """Nodes kept per step (beam search) or independent subtrees (DVTS)."""
        return self.n // self.beam_width

    @abc.abstractmethod
    def _start(self) -> tuple[list[int], int]:
        """The first step's parents and how many children each gets."""

    @abc.abstractmethod
    def _survivors(
        self, tree: SearchTree, parents: list[int], groups: list[list[Node]]
    ) -> list[int]:
        """The open nodes to expand next, given each parent's scored children (aligned with
        ``parents``); prunes the open children that do not survive."""

    def _done(self, tree: SearchTree) -> bool:
        """Whether enough paths have ended to stop early."""
        return False

    async def run(self, problem: Problem, ctx: Run) -> Result:
        prompt = ctx.backend.render(problem, self.system_prompt)
        tree = SearchTree(prompt, prompt_text=ctx.backend.decode(prompt))
        grow = await self._grower(problem, tree, ctx)
        parents, fanout = self._start()
        steps = expanded = 0
        cut_by: str | None = None
        while parents and steps < self.max_steps and not self._done(tree):
            steps += 1
            expansion = await grow(parents, n=fanout, to_end=steps == self.max_steps)
            expanded += sum(1 for group in expansion.children if group)
            groups = expansion.children
            if self.drop_duplicates:
                for group in groups:
                    prune_repeats(tree, group)
            fresh = [node.id for group in groups for node in group if node.status != "pruned"]
            await self._score(tree, fresh, problem, ctx)
            parents, fanout = self._survivors(tree, parents, groups), self.beam_width
            if expansion.budget_exhausted or ctx.ledger.exhausted:
                cut_by = expansion.exhausted_by or ctx.ledger.exhausted_by
                break
        if self.step_generator is None:  # a step generator's session charged its own
            charge_thinking(tree, self.thinking, ctx)
        return self._result(tree, cut_by, steps, expanded, ctx)

    async def _grower(self, problem: Problem, tree: SearchTree, ctx: Run) -> Grow:
        """How this run adds children under a step's parents."""
        if self.step_generator is None:
            async def sample(parents: list[int], *, n: int, to_end: bool) -> Expansion:
                return await expand(
                    tree, parents, ctx, n=n, step=self.step, sampling=self.sampling,
                    logprobs=self.verifier.needs_logprobs, to_end=to_end,
                )

            return sample
        session = await self.step_generator.open(
            problem, ctx, sampling=self.sampling, system_prompt=self.system_prompt,
            thinking=self.thinking,
        )
        return SessionExpander(session, tree, ctx, self.sampling, self.step).expand

    async def _score(
        self, tree: SearchTree, node_ids: list[int], problem: Problem, ctx: Run
    ) -> None:
        """Score the step's new nodes in one batch, open ones on their roll-outs if asked."""
        rollouts = None
        open_ids = [i for i in node_ids if tree.node(i).status == "open"]
        if self.lookahead and open_ids:
            rollouts = await rollout(
                tree, open_ids, ctx, steps=self.lookahead, step=self.step, sampling=self.sampling,
                logprobs=self.verifier.needs_logprobs,
            )
        await score_nodes(tree, node_ids, problem, self.verifier, ctx, rollouts=rollouts)

    def _result(
        self, tree: SearchTree, cut_by: str | None, steps: int, expanded: int, ctx: Run
    ) -> Result:
        ended = tree.nodes("finished")
        # Cut short before any path ended: the open paths are the best there is.
        paths = ended or (tree.frontier() if cut_by else [])
        candidates = [
            path_candidate(tree, node.id, index, self.extractor) for index, node in enumerate(paths)
        ]
        count_candidate_thinking(candidates, self.thinking, ctx.backend.decode)
        selected, evidence = select(candidates, self.selection)
        details: dict[str, Any] = {
            "steps": steps,
            "nodes_expanded": expanded,
            "nodes": len(tree) - 1,
            "finished": len(ended),
            "pruned": len(tree.nodes("pruned")),
            "candidate_nodes": [node.id for node in paths],
            **evidence,
        }
        return Result(
            strategy=self.name,
            candidates=candidates,
            selected_index=selected,
            usage=ctx.ledger.spent,
            budget_exhausted=cut_by is not None,
            exhausted_by=cut_by,
            details=details,
            tree=tree,
        )


def best_first(nodes: list[Node]) -> list[Node]:
    """Scored nodes, best first; equal scores: the older node (smaller id) first."""
    scored = [n for n in nodes if n.score is not None]
    return sorted(scored, key=lambda n: (-n.score, n.id))  # type: ignore[operator]


@strategies.register("beam")
class BeamSearch(StepSearch):
    name = "beam"

    def _start(self) -> tuple[list[int], int]:
        return [ROOT], self.n

    def _survivors(
        self, tree: SearchTree, parents: list[int], groups: list[list[Node]]
    ) -> list[int]:
        candidates = [n for group in groups for n in group if n.status == "open"]
        kept = [n.id for n in best_first(candidates)[: self.kept]]
        for node in candidates:
            if node.id not in kept:
                tree.prune(node.id, f"not among the {self.kept} best of its step")
        return kept

    def _done(self, tree: SearchTree) -> bool:
        return len(tree.nodes("finished")) >= self.n
