"""Particle filtering over reasoning steps (Puri et al., 2025, "A Probabilistic Inference
Approach to Inference-Time Scaling of LLMs using Particle-Based Monte Carlo Methods").

Search as inference: ``n`` particles (partial answers) start at the prompt. Each step, every
moving particle is extended by one step (all requests at once, copies of one state as one
request with ``n`` samples), the step scorer scores each new path, and the score is read as
a likelihood: ``reward(score) / softmax_temperature`` is added to the particle's
log-weight (``reward="logit"``: the score's log-odds, as the paper's code does). When the
weights degenerate (``ESS / N < ess_threshold``; ``1`` resamples every step, which is the
paper's algorithm) the moving particles are resampled with ``resampling``, so compute
follows the promising paths without abandoning the rest outright, as beam search would.

Finished particles are frozen: not extended, not resampled, their weight kept (see
``ponder.search.particles``). A particle the scorer fails for gets weight 0 and is dropped;
its slot is refilled at the next resampling. The run ends when no particle moves, after
``max_steps`` steps, or when the budget ends it (then with the particles so far).

The answer comes from the particles that gave an answer (all when none did), the finished
among them when any finished, by ``selection`` over the particles' weights
(``ponder.verifiers.selection``): ``argmax`` the heaviest (ties: shorter path, then earlier
particle), ``sample`` one drawn by weight from the run's seeded stream, ``weighted`` the answer
with the largest total weight, ``majority`` the answer most particles reached. Every
particle's path is a candidate; the tree holds every step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.usage import Usage
from ponder.runtime import Run
from ponder.search.expansion import Expansion
from ponder.search.writers import StepWriter
from ponder.search.particles import Population, Reward, reward
from ponder.search.resampling import Scheme
from ponder.search.scoring import path_candidate, score_nodes
from ponder.search.thinking import count_candidate_thinking
from ponder.search.tree import ROOT, SearchTree
from ponder.strategies.base import strategies
from ponder.strategies.step_search import StepSearchStrategy
from ponder.verifiers.selection import SelectionRuleOrSample, answered_first, select

_STEP_USAGE = ("model_calls", "prompt_tokens", "cached_prompt_tokens", "generated_tokens")
"""What each step's record says about its requests."""


@dataclass
class SearchRun:
    """One request's search state (never kept on the strategy, which requests share)."""

    problem: Problem
    ctx: Run
    tree: SearchTree
    writer: StepWriter
    rng: np.random.Generator
    """Resampling's stream, seeded from the context's."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Per step: particles moving, ESS after scoring, whether it resampled, engine usage."""
    resamplings: list[dict[str, Any]] = field(default_factory=list)
    generation: Usage = field(default_factory=Usage)
    """What the step requests used (the scorer's own usage is in the ledger only)."""
    exhausted_by: str | None = None
    budget_exhausted: bool = False

    def stop(self, exhausted_by: str | None) -> None:
        self.budget_exhausted = True
        self.exhausted_by = self.exhausted_by or exhausted_by or self.ctx.ledger.exhausted_by


@strategies.register("particle_filter")
class ParticleFilter(StepSearchStrategy):
    name = "particle_filter"

    n: int = Field(8, ge=1, le=256, description="Particles (every step's requests go at once).")
    max_steps: int = Field(
        12, ge=1, le=1000, description="Most steps per particle; the chain's token limit "
        "(sampling.max_tokens) may end a path sooner."
    )
    softmax_temperature: float = Field(
        1.0, gt=0.0, allow_inf_nan=False,
        description="Weights are ∝ exp(reward / T): a low T follows the scorer closely, a high "
        "T keeps the particles diverse.",
    )
    reward: Reward = Field(
        "logit", description="How a score becomes a log-likelihood: logit or log."
    )
    ess_threshold: float = Field(
        1.0, ge=0.0, le=1.0,
        description="Resample when ESS / N falls below this (1: every step, 0: never).",
    )
    resampling: Scheme = Field(
        "systematic", description="multinomial, systematic, stratified or residual."
    )
    selection: SelectionRuleOrSample = Field(
        "argmax", description="By weight: argmax (the heaviest), sample (drawn by weight), "
        "weighted (largest total weight per answer), or majority (one vote per particle)."
    )

    async def run(self, problem: Problem, ctx: Run) -> Result:
        run = await self.start(problem, ctx)
        population = await self.sweep(run, Population.at(ROOT, self.n))
        return self.result(run, population)

    # -- the pieces particle Gibbs reuses ---------------------------------------------------
    async def start(self, problem: Problem, ctx: Run) -> SearchRun:
        tree = self.tree(problem, ctx)
        writer = await self.writer(problem, tree, ctx)
        return SearchRun(problem, ctx, tree, writer, np.random.default_rng(ctx.next_seed()))

    async def sweep(self, run: SearchRun, population: Population, iteration: int = 0) -> Population:
        """Run the filter until no particle moves, ``max_steps``, or the budget ends it."""
        for step in range(1, self.max_steps + 1):
            moving = population.moving()
            if not moving or run.budget_exhausted:
                break
            if run.ctx.ledger.expired:
                run.stop("seconds")
                break
            record: dict[str, Any] = {"iteration": iteration, "step": step, "moving": len(moving)}
            moved = await self._advance(run, population, moving, record)
            await self._observe(run, population, moved)
            record["ess"] = population.ess()
            record["resampled"] = self._resample(run, population, step, iteration)
            run.steps.append(record)
        return population

    def result(self, run: SearchRun, population: Population) -> Result:
        nodes = list(dict.fromkeys(p.node for p in population.particles))
        weights = _node_weights(population, nodes)
        candidates = [
            path_candidate(run.tree, node, index, self.extractor)
            for index, node in enumerate(nodes)
        ]
        count_candidate_thinking(candidates, self.thinking, run.ctx.decode)
        for node, weight in zip(nodes, weights):
            run.tree.node(node).meta["weight"] = weight
        selected, evidence = self._select(candidates, weights, run)
        details = {
            "weights": weights,
            "selection": self.selection,
            **evidence,
            "steps": run.steps,
            "ess": [record["ess"] for record in run.steps],
            "resamplings": run.resamplings,
            "generation": run.generation.to_dict(),
        }
        return run.ctx.result(
            self.name, candidates, selected,
            cut=run.budget_exhausted, exhausted_by=run.exhausted_by, details=details, tree=run.tree,
        )

    # -- one step ---------------------------------------------------------------------------
    async def _advance(
        self, run: SearchRun, population: Population, moving: list[int], record: dict[str, Any]
    ) -> list[int]:
        """Move every moving particle one step; returns those that moved. References step
        to their next recorded node; the others share one request per state."""
        moved = []
        at: dict[int, list[int]] = {}
        for index in moving:
            particle = population.particles[index]
            if particle.replay:
                particle.node, particle.replay = particle.replay[0], particle.replay[1:]
                moved.append(index)
            else:
                at.setdefault(particle.node, []).append(index)
        by_copies: dict[int, list[int]] = {}
        for node, members in at.items():
            by_copies.setdefault(len(members), []).append(node)
        expansions: list[Expansion] = await asyncio.gather(*(
            run.writer.grow(nodes, n=copies) for copies, nodes in by_copies.items()
        ))
        usage = Usage()
        for expansion in expansions:
            usage.add(expansion.usage)
            if expansion.budget_exhausted:
                run.stop(expansion.exhausted_by)
            for parent, children in zip(expansion.parents, expansion.children):
                for index, child in zip(at[parent], children):
                    if child.status != "pruned":  # an aborted step cannot be scored
                        population.particles[index].node = child.id
                        moved.append(index)
        run.generation.add(usage)
        record.update({name: getattr(usage, name) for name in _STEP_USAGE})
        return sorted(moved)

    async def _observe(self, run: SearchRun, population: Population, moved: list[int]) -> None:
        """Score the new states and weigh each particle by its score's likelihood. A state
        left unscored because the budget ran out keeps the particle's weight (the run ends);
        one the scorer failed for drops the particle."""
        states = dict.fromkeys(population.particles[i].node for i in moved)
        unscored = [node for node in states if run.tree.node(node).score is None]
        await score_nodes(run.tree, unscored, run.problem, self.verifier, run.ctx)
        if run.ctx.ledger.exhausted:
            run.stop(run.ctx.ledger.exhausted_by)
        for index in moved:
            particle = population.particles[index]
            node = run.tree.node(particle.node)
            particle.finished = node.status == "finished"
            if node.score is None and run.budget_exhausted:
                continue
            population.observe(
                index,
                None if node.score is None
                else reward(node.score, self.reward) / self.softmax_temperature,
            )
            node.meta.setdefault("log_weight", particle.log_weight)

    def _resample(self, run: SearchRun, population: Population, step: int, iteration: int) -> bool:
        before = {population.particles[i].node for i in population.moving()}
        event = population.maybe_resample(
            step, threshold=self.ess_threshold, scheme=self.resampling, rng=run.rng
        )
        if event is None:
            return False
        after = {p.node for p in population.particles}
        for node in sorted(before - after):
            run.tree.prune(node, "resampled away")
        copies: dict[int, int] = {}
        for slot in event.slots:
            node = population.particles[slot].node
            copies[node] = copies.get(node, 0) + 1
        run.resamplings.append(
            {"iteration": iteration, "step": step, "ess": event.ess, "copies": copies}
        )
        return True

    # -- the answer ---------------------------------------------------------------------------
    def _select(
        self, candidates: list[Candidate], weights: list[float], run: SearchRun
    ) -> tuple[int | None, dict[str, Any]]:
        """Among the particles with weight: those that gave an answer (all when none did),
        of those the finished (all of those when none finished)."""
        answered = answered_first([c for c, w in zip(candidates, weights) if w > 0])
        pool = [c for c in answered if c.finish_reason is not None] or answered
        return select(
            pool, self.selection, weights=[weights[c.index] for c in pool], rng=run.ctx.rng
        )


def _node_weights(population: Population, nodes: list[int]) -> list[float]:
    """Each distinct final state's share of the population's weight (0 for all when every
    particle was dropped)."""
    if all(p.dropped for p in population.particles):
        return [0.0] * len(nodes)
    shares = dict.fromkeys(nodes, 0.0)
    for particle, weight in zip(population.particles, population.weights()):
        shares[particle.node] += float(weight)
    return [shares[node] for node in nodes]
