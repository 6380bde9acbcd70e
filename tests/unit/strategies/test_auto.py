"""Strategy 'auto' picks as documented: difficulty from the probe (the agreement of its answers,
or their mean verifier score), then the profile point for that difficulty with the best
accuracy less the token price of what it adds, among those that fit the tokens left (ties:
cheaper, then earlier); it refuses a profile made for another model unless forced, and runs
the chosen strategy on the same ledger as the probe, a self-consistency counting the probe's
answers among its chains."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.config import compose
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies import Auto, strategies
from ponder.strategies.auto import added_tokens, choose, decide
from ponder.strategies.profile import Profile, ProfilePoint, Thresholds, agreement, load_profile

POINTS = (
    {"strategy": {"name": "self_consistency", "n": 1}, "generated_tokens": 100,
     "accuracy": {"easy": 0.90, "medium": 0.40, "hard": 0.10}},
    {"strategy": {"name": "self_consistency", "n": 4}, "generated_tokens": 400,
     "accuracy": {"easy": 0.90, "medium": 0.60, "hard": 0.15}},
    {"strategy": {"name": "self_consistency", "n": 16}, "generated_tokens": 1600,
     "accuracy": {"easy": 0.92, "medium": 0.70, "hard": 0.30}},
    {"strategy": {"name": "best_of_n", "n": 4}, "generated_tokens": 400,
     "accuracy": {"easy": 0.85, "medium": 0.60, "hard": 0.20}},
)
PROFILE = Profile(points=POINTS)
SCORED = Profile(points=POINTS, predictor="score", probe_verifier={"name": "reference_answer"})
"""Difficulty from the mean score of the probe answers against the problem's reference."""


def answering(*values: str) -> ScriptedBackend:
    """Sample i of every request answers ``values[i % len(values)]``."""

    def handler(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        return ScriptedSample(f"Let me think.\nAnswer: {values[sample % len(values)]}")

    return ScriptedBackend(handler)


def context(backend: ScriptedBackend, generated_tokens: int | None = None) -> Run:
    return Run(backend, Ledger(Budget(generated_tokens=generated_tokens)), random.Random(0))


def profile_file(folder: Path, **fields: Any) -> Path:
    path = folder / "profile.yaml"
    path.write_text(yaml.safe_dump({"points": list(POINTS), **fields}))
    return path


# With the probe's 4 answers voting, self-consistency n=1 and n=4 add no tokens and n=16
# adds 12 chains' worth (1200); best-of-4 samples its own 4 (400).
@pytest.mark.parametrize(("difficulty", "tokens_left", "price", "picked"), [
    ("easy", None, 0.0, ("self_consistency", 16)),      # price 0: the most accurate
    ("easy", 1000, 0.0, ("self_consistency", 1)),       # n=16 does not fit; 0.90 twice: earlier
    ("medium", 1000, 0.0, ("self_consistency", 4)),     # 0.60 twice: the cheaper (n=4 adds 0)
    ("hard", 1000, 0.0, ("best_of_n", 4)),              # hard: best-of-N beats voting here
    ("hard", 5000, 0.0, ("self_consistency", 16)),
    ("medium", None, 0.05, ("self_consistency", 16)),   # 0.70 - 0.06 beats 0.60
    ("medium", None, 0.5, ("self_consistency", 4)),     # 0.70 - 0.60 does not
    ("hard", None, 0.1, ("self_consistency", 16)),      # 0.30 - 0.12 > 0.20 - 0.04 > 0.15
    ("hard", None, 0.2, ("self_consistency", 4)),       # 0.15 > 0.20 - 0.08 > 0.30 - 0.24
], ids=["easy-unlimited", "easy-1000", "medium-tie-cheaper", "hard-1000", "hard-5000",
        "medium-cheap-tokens", "medium-dear-tokens", "hard-price-0.1", "hard-price-0.2"])
def test_choose(difficulty: str, tokens_left: float | None, price: float, picked: tuple[str, int]) -> None:
    choice = choose(PROFILE, difficulty, tokens_left, price)
    assert (choice.point.strategy["name"], choice.point.strategy["n"]) == picked
    assert choice.fits and difficulty in choice.reason and f"{price:g} accuracy" in choice.reason


def test_the_price_defaults_to_the_profiles() -> None:
    dear = Profile(points=POINTS, token_price=0.5)
    assert choose(dear, "medium", None).point.strategy["n"] == 4
    assert choose(dear, "medium", None, token_price=0.05).point.strategy["n"] == 16


def test_when_nothing_fits_the_cheapest_runs_and_the_reason_says_so() -> None:
    best_of = Profile(points=(POINTS[3], {**POINTS[3], "generated_tokens": 900}))
    choice = choose(best_of, "hard", 50)
    assert not choice.fits and choice.added_tokens == 400
    assert choice.reason.startswith("no profiled strategy fits the 50 generated tokens left")


@pytest.mark.parametrize(("strategy", "probe_samples", "added"), [
    ({"name": "self_consistency", "n": 16}, 4, 1200.0),
    ({"name": "self_consistency", "n": 16}, 2, 1400.0),
    ({"name": "self_consistency", "n": 4}, 4, 0.0),
    ({"name": "self_consistency", "n": 2}, 4, 0.0),
    ({"name": "best_of_n", "n": 4}, 4, 1600.0),   # it scores its own chains
    ({"name": "self_consistency", "n": 16, "sampler": "short_mk"}, 4, 1600.0),  # not plain chains
    ({"name": "self_consistency", "n": 16, "format": "program"}, 4, 1600.0),
])
def test_added_tokens_leave_out_the_chains_the_probe_stands_in_for(
    strategy: dict[str, Any], probe_samples: int, added: float,
) -> None:
    point = ProfilePoint(strategy=strategy, generated_tokens=1600, accuracy=0.5)
    assert added_tokens(point, probe_samples) == added


@pytest.mark.parametrize(("share", "bucket"), [(1.0, "easy"), (0.75, "easy"), (0.74, "medium"),
                                               (0.5, "medium"), (0.49, "hard"), (0.0, "hard")])
def test_difficulty_buckets(share: float, bucket: str) -> None:
    assert Thresholds().bucket(share) == bucket


@pytest.mark.parametrize(("answers_", "share"), [
    (["12", "12", "12.0", "13"], 0.75), (["1", "2", "3", "4"], 0.25),
    ([None, None, "5", None], 0.25), ([None] * 4, 0.0),
])
def test_agreement_counts_equivalent_answers(answers_: list[str | None], share: float) -> None:
    assert agreement(answers_) == share


@pytest.mark.parametrize(("probe_answers", "difficulty", "picked"), [
    (("12",), "easy", ("self_consistency", 1)),
    (("12", "13"), "medium", ("self_consistency", 4)),
    (("1", "2", "3", "4"), "hard", ("best_of_n", 4)),
])
async def test_decide_probes_then_chooses_and_charges_the_probes(
    probe_answers: tuple[str, ...], difficulty: str, picked: tuple[str, int],
) -> None:
    backend = answering(*probe_answers)
    ctx = context(backend, generated_tokens=1200)
    decision = await decide(Problem(prompt="6 * 2?"), ctx, PROFILE)
    assert decision.difficulty == difficulty
    assert decision.feature == "agreement" and decision.feature_value == decision.agreement
    assert (decision.strategy["name"], decision.strategy["n"]) == picked
    assert len(decision.probe_answers) == 4
    assert backend.requests[0].params.n == 4 and backend.requests[0].params.max_tokens == 128
    spent = ctx.ledger.spent.generated_tokens
    assert spent > 0 and decision.tokens_left == 1200 - spent


@pytest.mark.parametrize(("probe_answers", "score", "difficulty"), [
    (("12", "12", "12", "13"), 0.75, "easy"),
    (("12", "13", "14", "12"), 0.5, "medium"),
    (("13",), 0.0, "hard"),  # the answers all agree (agreement 1.0), and all are wrong
], ids=["three-right", "half-right", "agreeing-on-a-wrong-answer"])
async def test_the_score_predictor_buckets_by_the_probes_mean_score(
    probe_answers: tuple[str, ...], score: float, difficulty: str,
) -> None:
    decision = await decide(Problem(prompt="6 * 2?", reference="12"), context(answering(*probe_answers)), SCORED)
    assert (decision.feature, decision.feature_value, decision.difficulty) == ("score", score, difficulty)
    assert decision.agreement == agreement(list(decision.probe_answers))


async def test_the_score_predictor_without_any_score_reads_zero_and_says_so() -> None:
    # no reference answer: the verifier scores none of the probe answers
    decision = await decide(Problem(prompt="6 * 2?"), context(answering("12")), SCORED)
    assert (decision.feature_value, decision.difficulty, decision.agreement) == (0.0, "hard", 1.0)
    assert decision.reason.startswith("the probe verifier scored none of the probe answers")


def test_the_score_predictor_needs_a_probe_verifier(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match=r"predictor: 'score' .*set probe_verifier"):
        load_profile(profile_file(tmp_path, predictor="score"))


def test_the_shipped_profile_loads_and_names_its_model() -> None:
    profile = load_profile()
    assert profile.points and profile.source and profile.model == "embedded"


def test_a_bad_profile_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"points": [{"strategy": {"name": "x"}, "generated_tokens": 1,
                                                "accuracy": {"easy": 1}}]}))
    with pytest.raises(BadRequestError, match=r"points\.0\.accuracy"):
        load_profile(path)


def test_a_profile_for_another_model_is_refused_naming_both(tmp_path: Path) -> None:
    path = profile_file(tmp_path, model="qwen3-8b")
    with pytest.raises(BadRequestError) as refused:
        load_profile(path, model="embedded")
    message = str(refused.value)
    assert f"profiles ({path}): made for model 'qwen3-8b', not 'embedded'" in message
    assert "ponder tune" in message and "--force-profile" in message
    assert load_profile(path, model="embedded", force=True).model == "qwen3-8b"
    assert load_profile(path, model="qwen3-8b").model == "qwen3-8b"
    assert load_profile(path).model == "qwen3-8b"  # the model unknown: nothing to check


def test_auto_checks_the_backend_config_it_will_run_on(tmp_path: Path) -> None:
    path = profile_file(tmp_path, model="qwen3-8b")
    with pytest.raises(BadRequestError, match="made for model 'qwen3-8b', not 'embedded'"):
        Auto(profile=path).check_backend({"kind": "vllm", "model": "embedded"})
    Auto(profile=path).check_backend({"kind": "vllm", "model": "qwen3-8b"})
    Auto(profile=path, force_profile=True).check_backend({"kind": "vllm", "model": "embedded"})


async def test_auto_refuses_a_backend_of_another_model_before_probing(tmp_path: Path) -> None:
    backend = answering("12")
    backend.model = "embedded"
    with pytest.raises(BadRequestError, match="made for model 'qwen3-8b', not 'embedded'"):
        await Auto(profile=profile_file(tmp_path, model="qwen3-8b")).run(Problem(prompt="6 * 2?"), context(backend))
    assert backend.requests == []
    forced = Auto(profile=profile_file(tmp_path, model="qwen3-8b"), force_profile=True)
    assert (await forced.run(Problem(prompt="6 * 2?"), context(backend))).answer == "12"


@pytest.mark.parametrize(("fields", "message"), [
    ({"profile": "/nowhere/profile.yaml"},
     "strategy.profile: profiles: cannot read /nowhere/profile.yaml: No such file or directory"),
    ({"profile": "POINTS", "points": [{**POINTS[0], "strategy": {"name": "self_consistency", "n": 0}}]},
     "strategy.profile: profiles (PATH): points.0: strategy.n: "),
    ({"profile": "POINTS", "probe_verifier": {"name": "oracle"}},
     "strategy.profile: profiles (PATH): probe_verifier: unknown verifier 'oracle'"),
], ids=["missing-file", "bad-point-strategy", "unknown-probe-verifier"])
def test_a_bad_profile_fails_when_auto_is_built(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    config = {"name": "auto", **fields}
    if fields["profile"] == "POINTS":
        path = tmp_path / "profile.yaml"
        path.write_text(yaml.safe_dump({"points": list(POINTS), **{k: v for k, v in fields.items() if k != "profile"}}))
        config = {"name": "auto", "profile": str(path)}
        message = message.replace("PATH", str(path))
    with pytest.raises(BadRequestError) as refused:
        strategies.build(config)
    assert str(refused.value).startswith(message)


def test_auto_builds_from_its_run_config_with_the_shipped_profile() -> None:
    config = compose(["strategy=auto", "dataset.size=3"], config_name="run")["strategy"]
    assert config == {**config, "name": "auto", "profile": None, "force_profile": False}
    auto = strategies.build(config)
    assert isinstance(auto, Auto) and auto.profile_path.name == "embedded.yaml"
    auto.check_backend(compose([])["backend"])  # the embedded model's own profile


@pytest.mark.parametrize(("price", "picked", "requests"), [
    (0.0, 16, [4, 12]),  # price 0: n=16, which samples the 12 chains the probe does not give
    (0.5, 4, [4]),       # n=4 at no added tokens: the probe's 4 answers are its vote
])
async def test_auto_runs_the_choice_on_the_probes_ledger_and_reuses_its_answers(
    tmp_path: Path, price: float, picked: int, requests: list[int],
) -> None:
    auto = strategies.build({"name": "auto", "profile": str(profile_file(tmp_path)), "token_price": price})
    backend = answering("12", "13")  # agreement 0.5: medium
    result = await auto.run(Problem(prompt="6 * 2?"), context(backend))
    chosen = result.details["auto"]
    assert chosen["difficulty"] == "medium" and chosen["strategy"] == {"name": "self_consistency", "n": picked}
    assert "probe" not in chosen and len(chosen["probe_answers"]) == 4
    assert [r.params.n for r in backend.requests] == requests  # the probe, then what is missing
    assert result.strategy == "auto" and len(result.candidates) == picked
    assert [c.index for c in result.candidates] == list(range(picked))
    assert result.details["earlier_chains"] == 4
    assert result.usage.generated_tokens == sum(c.num_tokens for c in result.candidates)


async def test_a_chosen_best_of_n_samples_its_own_chains(tmp_path: Path) -> None:
    path = profile_file(tmp_path, points=[POINTS[0], POINTS[3]])
    auto = strategies.build({"name": "auto", "profile": str(path)})
    backend = answering("1", "2", "3", "4")  # agreement 0.25: hard, where best-of-4 is best
    result = await auto.run(Problem(prompt="6 * 2?"), context(backend))
    assert result.details["auto"]["strategy"]["name"] == "best_of_n"
    assert [r.params.n for r in backend.requests] == [4, 4]
    assert len(result.candidates) == 4 and "earlier_chains" not in result.details
    assert result.usage.generated_tokens == 2 * sum(c.num_tokens for c in result.candidates)
