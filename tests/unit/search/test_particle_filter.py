"""Particle filtering on the scripted backend with scores from a table: weights as rewards'
likelihoods, resampling when ESS falls below the threshold, frozen finished particles,
dropped unscorable particles, selection rules, budget, and bad configs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from search_helpers import PROBLEM, PathScores, context, path_backend

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget
from ponder.config import compose
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.search.particles import Particle, Population, reward
from ponder.search.tree import SearchTree
from ponder.strategies import ParticleFilter, SamplingConfig, strategies
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT
from ponder.verifiers.base import Score, Verifier


class Constant(Verifier):
    """Gives every path the same score."""

    value: float

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        return [Score(self.value) for _ in candidates]


PROMPT = ScriptedBackend.from_script([]).render(PROBLEM, DEFAULT_SYSTEM_PROMPT)
STEP = StepConfig(delimiters=("\n\n",), max_step_tokens=16)
SAMPLING = SamplingConfig(max_tokens=200)


def backend(paths: dict[str, list[str]]) -> ScriptedBackend:
    """Each sample continuing a path takes that path's next text, in order."""
    queues = {path: list(texts) for path, texts in paths.items()}
    return path_backend(lambda path, sample, call: queues[path].pop(0))


def pf(scores: dict[str, float | None], **options: object) -> ParticleFilter:
    fields = {"n": 3, "step": STEP, "sampling": SAMPLING, "verifier": PathScores(table=scores)}
    return ParticleFilter(**{**fields, **options})


async def solve(
    strategy: ParticleFilter, scripted: ScriptedBackend, seed: int = 0, budget: Budget | None = None
) -> Result:
    ctx = context(scripted, budget)
    ctx.rng.seed(seed)
    return await strategy.run(PROBLEM, ctx)


def texts(result: Result) -> list[str]:
    return [c.text for c in result.candidates]


def continued(scripted: ScriptedBackend, path: str) -> int:
    """How many samples were asked to continue ``path``."""
    return sum(
        r.params.n for r in scripted.requests
        if "".join(chr(t) for t in r.prompt_token_ids[len(PROMPT):]) == path
    )


# Two steps each; A alone is heaviest (16 : 9 : 9), but B and C agree on 7 (18 : 16).
VOTE_PATHS = {
    "": ["A1\n\n", "B1\n\n", "C1\n\n"],
    "A1\n\n": ["Answer: 5"],
    "B1\n\n": ["Answer: 7"],
    "C1\n\n": ["Answer: 7"],
}
VOTE_SCORES = {
    "A1\n\n": 0.8, "A1\n\nAnswer: 5": 0.8,
    "B1\n\n": 0.75, "B1\n\nAnswer: 7": 0.75,
    "C1\n\n": 0.75, "C1\n\nAnswer: 7": 0.75,
}


async def test_weights_are_the_product_of_step_likelihoods() -> None:
    result = await solve(pf(VOTE_SCORES, ess_threshold=0.0), backend(VOTE_PATHS))
    assert texts(result) == ["A1\n\nAnswer: 5", "B1\n\nAnswer: 7", "C1\n\nAnswer: 7"]
    # logit(0.8) = log 4 and logit(0.75) = log 3, twice each: 16, 9, 9.
    assert result.details["weights"] == pytest.approx([16 / 34, 9 / 34, 9 / 34])
    assert result.details["resamplings"] == []


async def test_softmax_temperature_flattens_the_weights() -> None:
    strategy = pf(VOTE_SCORES, ess_threshold=0.0, softmax_temperature=2.0)
    result = await solve(strategy, backend(VOTE_PATHS))
    assert result.details["weights"] == pytest.approx([0.4, 0.3, 0.3])  # 4 : 3 : 3


async def test_log_reward_uses_the_score_as_the_likelihood() -> None:
    result = await solve(pf(VOTE_SCORES, ess_threshold=0.0, reward="log"), backend(VOTE_PATHS))
    total = 0.64 + 2 * 0.5625
    assert result.details["weights"] == pytest.approx(np.array([0.64, 0.5625, 0.5625]) / total)


@pytest.mark.parametrize(("selection", "answer"), [("argmax", "5"), ("weighted", "7")])
async def test_selection_by_weight(selection: str, answer: str) -> None:
    strategy = pf(VOTE_SCORES, ess_threshold=0.0, selection=selection)
    result = await solve(strategy, backend(VOTE_PATHS))
    assert result.answer == answer
    if selection == "weighted":
        assert result.details["votes"] == pytest.approx({"5": 16 / 34, "7": 18 / 34})


@pytest.mark.parametrize("selection", ["argmax", "sample"])
async def test_a_particle_that_gave_no_answer_is_not_chosen_while_one_did(selection: str) -> None:
    # A ends heaviest but without an answer (no number in its path); B is still open after
    # max_steps but gave one; C finished with one, lightest of all.
    paths = {"": ["A\n\n", "B\n\n", "C\n\n"], "A\n\n": ["Done."], "B\n\n": ["So 8\n\n"],
             "C\n\n": ["Answer: 7"]}
    scores = {"A\n\n": 0.9, "A\n\nDone.": 0.9, "B\n\n": 0.8, "B\n\nSo 8\n\n": 0.8,
              "C\n\n": 0.6, "C\n\nAnswer: 7": 0.6}
    strategy = pf(scores, ess_threshold=0.0, max_steps=2, selection=selection)
    result = await solve(strategy, backend(paths))
    assert [(c.answer, c.finish_reason is not None) for c in result.candidates] == [
        (None, True), ("8", False), ("7", True)
    ]
    assert result.answer == "7"
    # With no finished particle answering, the open one that did is chosen over A.
    paths["C\n\n"], scores["C\n\nThe end."] = ["The end."], 0.6
    result = await solve(strategy, backend(paths))
    assert result.answer == "8"


async def test_sampling_by_weight_follows_the_weights_and_the_seed() -> None:
    strategy = pf(VOTE_SCORES, ess_threshold=0.0, selection="sample")
    picks = [(await solve(strategy, backend(VOTE_PATHS), s)).selected_index for s in range(300)]
    share = Counter(picks)[0] / len(picks)
    assert share == pytest.approx(16 / 34, abs=0.08)
    again = [(await solve(strategy, backend(VOTE_PATHS), s)).selected_index for s in range(20)]
    assert again == picks[:20]


async def test_no_resampling_while_ess_stays_above_the_threshold() -> None:
    scores = {**VOTE_SCORES, "A1\n\n": 0.6, "B1\n\n": 0.5, "C1\n\n": 0.5}
    result = await solve(pf(scores, ess_threshold=0.5), backend(VOTE_PATHS))
    weights = np.array([1.5, 1.0, 1.0]) / 3.5  # logit(0.6) = log 1.5
    assert result.details["ess"][0] == pytest.approx(1 / np.square(weights).sum())  # 2.88 of 3
    assert result.details["resamplings"] == []
    assert [s["resampled"] for s in result.details["steps"]] == [False, False]


async def test_a_degenerate_step_resamples_every_slot_from_the_survivor() -> None:
    paths = {
        "": ["A1\n\n", "B1\n\n", "C1\n\n"],
        "A1\n\n": ["Answer: 5", "Answer: 6", "Answer: 6"],
    }
    scores = {
        "A1\n\n": 0.99, "B1\n\n": 1e-6,  # C1 cannot be scored: that particle is dropped
        "A1\n\nAnswer: 5": 0.9, "A1\n\nAnswer: 6": 0.6,
    }
    scripted = backend(paths)
    result = await solve(pf(scores, ess_threshold=0.5), scripted)
    first = result.details["resamplings"][0]
    a1 = next(n.id for n in result.tree.nodes() if n.text == "A1\n\n")
    assert first["step"] == 1 and first["copies"] == {a1: 3}
    assert first["ess"] == pytest.approx(1.0, abs=1e-6)
    assert [r.params.n for r in scripted.requests] == [3, 3]  # three copies, one request
    assert continued(scripted, "A1\n\n") == 3
    pruned = {n.text: n.score_reason for n in result.tree.nodes("pruned")}
    assert pruned == {"B1\n\n": "resampled away", "C1\n\n": "the step scorer gave no score"}
    assert texts(result) == ["A1\n\nAnswer: 5", "A1\n\nAnswer: 6", "A1\n\nAnswer: 6"]
    assert result.answer == "5"


def frozen_steps(path: str, sample: int, call: int) -> str:
    """The first sample answers at once; the others take two steps, then answer."""
    if not path:
        return ["Answer: 5", "B1\n\n", "C1\n\n"][sample]
    done = path.count("\n\n")
    return f"{path[0]}{done + 1}\n\n" if done < 2 else f"Answer: {path[0]}"


FROZEN_SCORES = {
    "Answer: 5": 0.8,
    "B1\n\n": 0.5, "B1\n\nB2\n\n": 0.75, "B1\n\nB2\n\nAnswer: B": 0.5,
    "C1\n\n": 0.5, "C1\n\nC2\n\n": 0.75, "C1\n\nC2\n\nAnswer: C": 0.5,
}


@pytest.mark.parametrize("scheme", ["multinomial", "systematic", "stratified", "residual"])
async def test_finished_particles_are_frozen_and_keep_their_weight(scheme: str) -> None:
    scripted = path_backend(frozen_steps)
    result = await solve(pf(FROZEN_SCORES, ess_threshold=1.0, resampling=scheme), scripted)
    assert continued(scripted, "Answer: 5") == 0  # never extended
    assert [s["moving"] for s in result.details["steps"]] == [3, 2, 2]
    assert [s["resampled"] for s in result.details["steps"]] == [True, True, False]
    # Resampling moved only the other two (whose weights it kept in total: 1 + 1, then
    # 3 + 3), so the finished particle kept 4 against their 3 and 3, whatever the scheme.
    assert texts(result)[0] == "Answer: 5"
    assert all(text.endswith(("Answer: B", "Answer: C")) for text in texts(result)[1:])
    assert result.details["weights"] == pytest.approx([0.4, 0.3, 0.3])


async def test_a_particle_the_scorer_crashes_on_is_dropped_not_extended() -> None:
    paths = {"": ["A1\n\n", "B1\n\n", "C1\n\n"], "A1\n\n": ["Answer: 5"], "C1\n\n": ["Answer: 6"]}
    scores = {
        "A1\n\n": 0.5, "B1\n\n": 0.5, "C1\n\n": 0.5,
        "A1\n\nAnswer: 5": 0.9, "C1\n\nAnswer: 6": 0.6,
    }
    scorer = PathScores(table=scores, raise_on=("B1\n\n",))
    scripted = backend(paths)
    result = await solve(pf(scores, ess_threshold=0.0, verifier=scorer), scripted)
    assert continued(scripted, "B1\n\n") == 0
    b1 = next(n for n in result.tree.nodes() if n.text == "B1\n\n")
    assert b1.status == "pruned" and "the step scorer failed" in (b1.score_reason or "")
    weights = dict(zip(texts(result), result.details["weights"]))
    assert weights["B1\n\n"] == 0.0
    assert weights["A1\n\nAnswer: 5"] == pytest.approx(9 / 10.5)
    assert result.answer == "5"


async def test_when_every_particle_is_dropped_there_is_no_answer() -> None:
    result = await solve(pf({}, ess_threshold=1.0), backend({"": ["A\n\n", "B\n\n", "C\n\n"]}))
    assert result.selected_index is None
    assert result.details["weights"] == [0.0, 0.0, 0.0]
    assert result.details["ess"] == [None]


async def test_max_steps_ends_the_run_with_unfinished_particles() -> None:
    scripted = path_backend(lambda path, sample, call: f"s{len(path)}\n\n")
    result = await solve(pf({}, max_steps=2, n=2, verifier=Constant(value=0.5)), scripted)
    assert len(result.details["steps"]) == 2
    assert all(c.finish_reason is None for c in result.candidates)
    assert result.selected_index is not None and not result.budget_exhausted


async def test_budget_ends_the_run_with_the_particles_so_far() -> None:
    scripted = path_backend(lambda path, sample, call: "abc\n\n")
    # Step one reserves 3 x 16 and uses 15; of step two's three requests of 16, two fit in
    # the 45 left and the third is never submitted: the run ends after that step.
    budget = Budget(generated_tokens=60)
    result = await solve(pf({}, verifier=Constant(value=0.5)), scripted, budget=budget)
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"
    assert [s["model_calls"] for s in result.details["steps"]] == [1, 2]
    assert result.usage.generated_tokens == 25
    assert result.selected_index is not None
    assert result.tree.total_cost == result.details["generation"]["generated_tokens"]


async def test_the_same_seed_gives_the_same_run() -> None:
    scripted = lambda: path_backend(  # noqa: E731
        lambda path, sample, call: "Answer: 1" if len(path) > 8 else f"{sample}x\n\n"
    )
    strategy = pf({}, verifier=Constant(value=0.5), resampling="multinomial")
    first, second = await solve(strategy, scripted(), 3), await solve(strategy, scripted(), 3)
    assert texts(first) == texts(second)
    assert first.details["resamplings"] == second.details["resamplings"]
    assert isinstance(first.tree, SearchTree) and first.tree == second.tree


def test_population_resampling_keeps_the_total_weight_of_the_moving_particles() -> None:
    population = Population(
        [
            Particle(1, math.log(4.0), finished=True),
            Particle(2, math.log(1.0)),
            Particle(3, math.log(3.0)),
            Particle(4, -math.inf),
        ]
    )
    rng = np.random.default_rng(0)
    event = population.maybe_resample(1, threshold=1.0, scheme="systematic", rng=rng)
    assert event is not None and event.slots == [1, 2, 3]
    assert population.particles[0] == Particle(1, math.log(4.0), finished=True)
    assert [p.log_weight for p in population.particles[1:]] == pytest.approx([math.log(4 / 3)] * 3)
    assert {p.node for p in population.particles[1:]} <= {2, 3}  # the dropped slot is refilled
    np.testing.assert_allclose(population.weights(), [0.5, 1 / 6, 1 / 6, 1 / 6])


def test_reward_is_the_log_odds_or_the_log_of_the_score() -> None:
    assert reward(0.8, "logit") == pytest.approx(math.log(4))
    assert reward(0.8, "log") == pytest.approx(math.log(0.8))
    assert math.isfinite(reward(0.0, "logit")) and math.isfinite(reward(1.0, "logit"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n", 0, "strategy.n: Input should be greater than or equal to 1 (got 0)"),
        ("ess_threshold", 1.5, "strategy.ess_threshold: Input should be less than or equal to 1"),
        ("ess_threshold", -0.1, "strategy.ess_threshold: Input should be greater than or equal"),
        ("softmax_temperature", 0, "strategy.softmax_temperature: Input should be greater than 0"),
        ("softmax_temperature", -1.0, "strategy.softmax_temperature: Input should be greater"),
        ("resampling", "importance", "strategy.resampling: Input should be 'multinomial'"),
        ("selection", "best", "strategy.selection: Input should be 'argmax', 'majority', 'weighted' or 'sample'"),
    ],
)
def test_bad_configs_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(BadRequestError) as error:
        strategies.build({"name": "particle_filter", field: value})
    assert message in str(error.value)


def test_the_config_file_builds_the_defaults_with_an_overridden_scheme() -> None:
    assert strategies.build(compose(["strategy=particle_filter"])["strategy"]) == ParticleFilter()
    overrides = ["strategy=particle_filter", "strategy.resampling=residual", "strategy.n=4"]
    built = strategies.build(compose(overrides)["strategy"])
    assert (built.resampling, built.n) == ("residual", 4)
