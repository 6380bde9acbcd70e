"""Particle Gibbs (Puri et al., 2025): particle filtering iterated, each filter conditioned on
reference particles kept from the one before.

After each filter, ``references`` finished particles are drawn by weight (without
replacement, from the run's seeded stream) and the next filter runs with them: a reference
replays its recorded path step by step with its recorded scores instead of sampling, holds
its slot through every resampling, and lends its state to free slots that draw it. So a good
path found once is never lost, while the free particles keep exploring around it. A filter
with no finished particle passes no reference on (the next one starts unconditioned).

Particle filtering is this with one iteration. The answer is selected from the last
filter's particles; the tree holds every iteration's steps (``meta["iteration"]``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.runtime import Run
from ponder.search.particles import Particle, Population
from ponder.search.tree import ROOT
from ponder.strategies.base import strategies
from ponder.strategies.particle_filter import ParticleFilter, SearchRun


@strategies.register("particle_gibbs")
class ParticleGibbs(ParticleFilter):
    name = "particle_gibbs"

    iterations: int = Field(3, ge=1, le=100, description="Particle filters run one after another.")
    references: int = Field(
        1, ge=1, description="Reference particles carried into each next filter (fewer than n)."
    )

    @model_validator(mode="after")
    def _one_free_particle(self) -> ParticleGibbs:
        if self.references >= self.n:
            raise ValueError(
                f"references must be fewer than n ({self.n}) so that some particles sample "
                f"freely, got {self.references}"
            )
        return self

    async def run(self, problem: Problem, ctx: Run) -> Result:
        run = await self.start(problem, ctx)
        references: list[Particle] = []
        iterations: list[dict[str, Any]] = []
        for iteration in range(self.iterations):
            seen = len(run.tree)
            iterations.append(
                {"iteration": iteration, "references": [p.replay[-1] for p in references]}
            )
            population = await self.sweep(run, Population.at(ROOT, self.n, references), iteration)
            for node in list(run.tree)[seen:]:
                node.meta["iteration"] = iteration
            if run.budget_exhausted:
                break
            references = self._references(run, population)
        result = self.result(run, population)
        result.details["iterations"] = iterations
        return result

    def _references(self, run: SearchRun, population: Population) -> list[Particle]:
        """Up to ``references`` distinct finished paths, drawn by weight, set to replay."""
        if all(p.dropped for p in population.particles):
            return []
        pool: dict[int, float] = {}
        for particle, weight in zip(population.particles, population.weights()):
            if particle.finished and weight > 0:
                pool[particle.node] = pool.get(particle.node, 0.0) + float(weight)
        if not pool:
            return []
        nodes, masses = list(pool), list(pool.values())
        total = sum(masses)
        drawn = run.rng.choice(
            len(nodes), size=min(self.references, len(nodes)), replace=False,
            p=[mass / total for mass in masses],
        )
        return [
            Particle(ROOT, reference=True, replay=tuple(n.id for n in run.tree.path(nodes[i])))
            for i in sorted(drawn.tolist())
        ]
