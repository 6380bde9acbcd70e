"""Particle Gibbs on the scripted backend: the reference particle found by one filter is
kept through the next (replayed, never resampled away), lends its state to free slots, and
is drawn only from finished particles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from search_helpers import PROBLEM, PathScores, context, path_backend

from ponder.backends.scripted import ScriptedBackend
from ponder.config import compose
from ponder.core.result import Result
from ponder.errors import BadRequestError
from ponder.search.expansion import StepConfig
from ponder.search.particles import Particle, Population
from ponder.strategies import ParticleGibbs, SamplingConfig, strategies
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT

PROMPT = ScriptedBackend.from_script([]).render(PROBLEM, DEFAULT_SYSTEM_PROMPT)


def backend(paths: dict[str, list[str]]) -> ScriptedBackend:
    """Each sample continuing a path takes that path's next text, in order."""
    queues = {path: list(texts) for path, texts in paths.items()}
    return path_backend(lambda path, sample, call: queues[path].pop(0))


def pg(scores: dict[str, float | None], **options: object) -> ParticleGibbs:
    fields = {
        "n": 2, "iterations": 2, "references": 1, "verifier": PathScores(table=scores),
        "step": StepConfig(max_step_tokens=16), "sampling": SamplingConfig(max_tokens=200),
    }
    return ParticleGibbs(**{**fields, **options})


async def solve(strategy: ParticleGibbs, scripted: ScriptedBackend) -> Result:
    return await strategy.run(PROBLEM, context(scripted))


def continued(scripted: ScriptedBackend, path: str) -> int:
    """How many samples were asked to continue ``path``."""
    return sum(
        r.params.n for r in scripted.requests
        if "".join(chr(t) for t in r.prompt_token_ids[len(PROMPT):]) == path
    )


async def test_the_reference_is_replayed_and_kept_not_regenerated() -> None:
    paths = {
        "": ["A1\n\n", "B1\n\n", "D1\n\n"],
        "A1\n\n": ["Answer: 5"], "B1\n\n": ["Answer: 6"], "D1\n\n": ["Answer: 7"],
    }
    scores = {
        "A1\n\n": 0.9, "A1\n\nAnswer: 5": 0.9,
        "B1\n\n": 0.9,  # B's answer cannot be scored: B is dropped, so A is the reference
        "D1\n\n": 0.5, "D1\n\nAnswer: 7": 0.5,
    }
    scripted = backend(paths)
    result = await solve(pg(scores, ess_threshold=0.0), scripted)
    a_end = next(n for n in result.tree.nodes() if n.text == "Answer: 5")
    assert result.details["iterations"] == [
        {"iteration": 0, "references": []}, {"iteration": 1, "references": [a_end.id]}
    ]
    assert continued(scripted, "A1\n\n") == 1  # replayed in iteration 1, not sampled again
    assert [c.text for c in result.candidates] == ["A1\n\nAnswer: 5", "D1\n\nAnswer: 7"]
    # The reference earned its recorded likelihoods again: 9 x 9 against D's 1 x 1.
    assert result.details["weights"] == pytest.approx([81 / 82, 1 / 82])
    assert result.answer == "5"
    iterations = {n.text: n.meta["iteration"] for n in result.tree.nodes()}
    assert iterations == {"A1\n\n": 0, "Answer: 5": 0, "B1\n\n": 0, "Answer: 6": 0,
                          "D1\n\n": 1, "Answer: 7": 1}


async def test_free_particles_resample_into_the_reference_path() -> None:
    paths = {
        "": ["A1\n\n", "B1\n\n", "D1\n\n"],
        "A1\n\n": ["Answer: 5", "Answer: 8"], "B1\n\n": ["Answer: 6"],
    }
    scores = {
        "A1\n\n": 0.9, "A1\n\nAnswer: 5": 0.9, "A1\n\nAnswer: 8": 0.6,
        "B1\n\n": 0.9, "D1\n\n": 1e-6,
    }
    scripted = backend(paths)
    result = await solve(pg(scores, ess_threshold=1.0), scripted)
    a1 = next(n.id for n in result.tree.nodes() if n.text == "A1\n\n")
    resamplings = result.details["resamplings"]
    second = [(r["step"], r["copies"]) for r in resamplings if r["iteration"] == 1]
    assert second == [(1, {a1: 2})]  # the reference, and the free slot that drew its state
    assert continued(scripted, "A1\n\n") == 2  # once per iteration: the copy samples anew
    d1 = next(n for n in result.tree.nodes() if n.text == "D1\n\n")
    assert d1.status == "pruned" and d1.score_reason == "resampled away"
    assert [c.text for c in result.candidates] == ["A1\n\nAnswer: 5", "A1\n\nAnswer: 8"]
    assert result.answer == "5"


async def test_no_finished_particle_means_no_reference() -> None:
    scripted = path_backend(lambda path, sample, call: f"step {call}\n\n")
    result = await solve(pg({}, max_steps=1, verifier=PathScores(table={}), iterations=3), scripted)
    assert [it["references"] for it in result.details["iterations"]] == [[], [], []]
    assert len(scripted.requests) == 3  # one root request per iteration, nothing replayed


async def test_one_iteration_is_the_particle_filter() -> None:
    paths = {"": ["A1\n\n", "B1\n\n"], "A1\n\n": ["Answer: 5"], "B1\n\n": ["Answer: 6"]}
    scores = {"A1\n\n": 0.6, "B1\n\n": 0.6, "A1\n\nAnswer: 5": 0.8, "B1\n\nAnswer: 6": 0.75}
    gibbs = await solve(pg(scores, iterations=1), backend(paths))
    filtered = await strategies.build(
        {"name": "particle_filter", **pg(scores).model_dump(exclude={"iterations", "references"}),
         "verifier": PathScores(table=scores)}
    ).run(PROBLEM, context(backend(paths)))
    assert [c.text for c in gibbs.candidates] == [c.text for c in filtered.candidates]
    assert gibbs.details["weights"] == pytest.approx(filtered.details["weights"])
    assert gibbs.details["weights"] == pytest.approx([4 / 7, 3 / 7])


def test_a_reference_keeps_its_slot_however_light() -> None:
    reference = Particle(5, math.log(1e-9), reference=True, replay=(6, 7))
    population = Population([reference, Particle(8, 0.0), Particle(9, 0.0)])
    population.maybe_resample(1, threshold=1.0, scheme="multinomial", rng=np.random.default_rng(0))
    kept = population.particles[0]
    assert (kept.node, kept.reference, kept.replay) == (5, True, (6, 7))
    assert {p.node for p in population.particles[1:]} <= {8, 9}


def test_a_copy_of_the_reference_samples_its_own_future() -> None:
    reference = Particle(5, 0.0, reference=True, replay=(6,))
    population = Population([reference, Particle(8, math.log(1e-12))])
    population.maybe_resample(1, threshold=1.0, scheme="systematic", rng=np.random.default_rng(0))
    copy = population.particles[1]
    assert (copy.node, copy.reference, copy.replay) == (5, False, ())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": 2, "references": 2}, "references must be fewer than n (2)"),
        ({"references": 0}, "strategy.references: Input should be greater than or equal to 1"),
        ({"iterations": 0}, "strategy.iterations: Input should be greater than or equal to 1"),
        ({"n": 0}, "strategy.n: Input should be greater than or equal to 1"),
    ],
)
def test_bad_configs_name_the_field(fields: dict[str, int], message: str) -> None:
    with pytest.raises(BadRequestError) as error:
        strategies.build({"name": "particle_gibbs", **fields})
    assert message in str(error.value)


def test_the_config_file_builds_the_defaults() -> None:
    config = compose(["strategy=particle_gibbs", "strategy.iterations=2"])["strategy"]
    built = strategies.build(config)
    assert built == ParticleGibbs(iterations=2)
