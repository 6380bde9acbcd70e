"""A population of weighted particles over the reasoning tree, for sequential Monte Carlo.

A particle is a partial answer (a node of the ``SearchTree``: its path is the answer so far)
with a log-weight. Each step, the strategy extends every moving particle by one step, reads
the step scorer's score as a likelihood (``reward(score) / temperature`` is added to the
log-weight) and resamples when the weights have degenerated (``resampling.needs_resampling``).

Finished particles are frozen: they are never extended, their weight no longer changes, and
resampling leaves them out, so they stop consuming compute and keep the weight they earned.
Resampling runs over the particles still moving and preserves their total weight (each
survivor gets the group's mean weight), so a finished particle's weight stays comparable to
the others' when the final answer is chosen.

A particle the scorer could not score is dropped: its weight becomes 0 (log-weight -inf),
it is not extended again, and the next resampling refills its slot from the others.

Particle Gibbs conditions a filter on reference particles: a reference replays a path found
before (``replay``: its remaining nodes, scored already) instead of sampling, keeps its slot
through every resampling, and may still be copied into free slots like any other particle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ponder.errors import BadRequestError
from ponder.search.resampling import (
    effective_sample_size,
    needs_resampling,
    resample,
    softmax,
)

Reward = Literal["logit", "log"]
"""How a score in [0, 1] becomes a log-likelihood: ``logit`` reads it as a probability of
being right and uses its log-odds (unbounded both ways, as the reference implementation of
particle filtering for inference-time scaling does); ``log`` uses the score itself as the
likelihood (``weight ∝ score^(1/temperature)``)."""

_EPSILON = 1e-7
"""Scores are clipped to [eps, 1 - eps], so a score of exactly 0 or 1 stays finite."""


def reward(score: float, how: Reward) -> float:
    """The log-likelihood of a step scorer's ``score``."""
    clipped = min(max(score, _EPSILON), 1.0 - _EPSILON)
    if how == "logit":
        return math.log(clipped) - math.log1p(-clipped)
    if how == "log":
        return math.log(clipped)
    raise BadRequestError(f"reward must be 'logit' or 'log', got {how!r}")


@dataclass
class Particle:
    node: int
    """Its current state: the tree node its path ends at."""
    log_weight: float = 0.0
    finished: bool = False
    """Its path ended (the answer is complete, or the chain's token limit came)."""
    reference: bool = False
    """A particle Gibbs reference: never resampled away."""
    replay: tuple[int, ...] = ()
    """The nodes a reference will step through next, already generated and scored."""

    @property
    def dropped(self) -> bool:
        return self.log_weight == -math.inf

    @property
    def moving(self) -> bool:
        """Still to be extended: neither finished nor dropped."""
        return not self.finished and not self.dropped


@dataclass
class Resampling:
    """One resampling event: which particles the moving slots were refilled from."""

    step: int
    ess: float
    slots: list[int]
    """The population indices that were refilled (the moving and dropped ones)."""
    ancestors: list[int]
    """For each slot, the population index it copies (references copy themselves)."""


@dataclass
class Population:
    particles: list[Particle]
    resamplings: list[Resampling] = field(default_factory=list)

    @classmethod
    def at(cls, node: int, n: int, references: Sequence[Particle] = ()) -> Population:
        """``n`` particles in all: the references, then free particles at ``node``."""
        if n < 1:
            raise BadRequestError(f"n (the number of particles) must be >= 1, got {n}")
        if len(references) >= n:
            raise BadRequestError(
                f"references ({len(references)}) must be fewer than the particles ({n}), "
                f"so that at least one particle samples freely"
            )
        return cls([*references, *(Particle(node) for _ in range(n - len(references)))])

    def __len__(self) -> int:
        return len(self.particles)

    def moving(self) -> list[int]:
        """Indices of the particles still to be extended."""
        return [i for i, p in enumerate(self.particles) if p.moving]

    def observe(self, index: int, log_likelihood: float | None) -> None:
        """Multiply the particle's weight by a likelihood; None (no score) drops it."""
        particle = self.particles[index]
        particle.log_weight = (
            -math.inf if log_likelihood is None else particle.log_weight + log_likelihood
        )

    def weights(self) -> np.ndarray:
        """Normalized weights of the whole population (finished particles included)."""
        return softmax([p.log_weight for p in self.particles])

    def ess(self) -> float | None:
        """Effective sample size of the particles not finished (None when none has weight)."""
        group = self._unfinished()
        logs = [self.particles[i].log_weight for i in group]
        if not group or all(log == -math.inf for log in logs):
            return None
        return effective_sample_size(softmax(logs))

    def maybe_resample(
        self, step: int, *, threshold: float, scheme: str, rng: np.random.Generator
    ) -> Resampling | None:
        """Resample the unfinished particles when ``ESS / their count < threshold``.
        References keep their slots; the other slots are drawn from all unfinished particles
        (references included) with the scheme, and every unfinished particle then carries
        their mean weight."""
        group = self._unfinished()
        logs = np.array([self.particles[i].log_weight for i in group])
        if not group or np.isneginf(logs).all():
            return None
        weights = softmax(logs)
        if not needs_resampling(weights, threshold):
            return None
        free = [slot for slot in group if not self.particles[slot].reference]
        drawn = resample(weights, len(free), scheme, rng).tolist()
        sources = {slot: group[k] for slot, k in zip(free, drawn)}
        # A copy samples its own future, even when it copies a reference's state.
        copies = {slot: Particle(self.particles[source].node) for slot, source in sources.items()}
        for slot, copy in copies.items():
            self.particles[slot] = copy
        mean = float(np.logaddexp.reduce(logs)) - math.log(len(group))
        for slot in group:
            self.particles[slot].log_weight = mean
        ancestors = [sources.get(slot, slot) for slot in group]
        event = Resampling(step, effective_sample_size(weights), group, ancestors)
        self.resamplings.append(event)
        return event

    # -- internals ----------------------------------------------------------------------
    def _unfinished(self) -> list[int]:
        return [i for i, p in enumerate(self.particles) if not p.finished]
