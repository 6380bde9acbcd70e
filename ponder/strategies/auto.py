"""Strategy ``auto``: compute-optimal allocation of a request's budget.

The idea is that of "Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling
Model Parameters" (Snell et al., 2024): the best way to spend test-time compute depends on
how hard the question is, so estimate the difficulty first, then pick the strategy and size
that a profile (``ponder.strategies.profile``) shows to be most accurate at that difficulty
for the compute available.

1. Probe: ``probe_samples`` short chains (``probe_tokens`` each, one engine request; their
   tokens count against the request's budget like any other work), scored by the profile's
   ``probe_verifier`` when it names one.
2. Difficulty: the profile's predictor reads a feature from the probe (``agreement``: the
   share of answers equivalent to the most common one; ``score``: the mean verifier score)
   and its thresholds put the feature in a bucket (easy, medium, hard).
3. Choose: each point's worth is its profiled accuracy at that difficulty less the
   profile's ``token_price`` (accuracy per 1000 generated tokens) times the tokens it adds
   after the probe; among the points that fit in what the budget has left, the worthiest
   runs. Ties go to the cheaper point, then to the earlier one in the file. When none fits,
   the cheapest runs (the budget cuts it short if need be) and the decision says so. A price
   of 0 takes the most accurate point whatever it costs.
4. Run the chosen strategy on the same run, so the probe and the answer share one ledger. The
   probe's answers are not thrown away: a chosen self-consistency whose chains are of the
   probe's format (words or programs) counts them as its first chains and samples only the
   rest (none when the probe had enough), so its added tokens are its profiled tokens times
   the share of chains it still samples.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.best_of_n import BestOfN
from ponder.strategies.profile import (
    Profile,
    ProfilePoint,
    agreement,
    check_model,
    default_profile_path,
    load_profile,
)
from ponder.strategies.sampling import ChainFormat
from ponder.strategies.self_consistency import SelfConsistency
from ponder.verifiers.base import verifiers


@dataclass(frozen=True)
class Choice:
    point: ProfilePoint
    added_tokens: float
    """What the point is expected to generate after the probe."""
    fits: bool
    """False when no point fitted the tokens left and the cheapest was taken."""
    reason: str


def added_tokens(point: ProfilePoint, probe_samples: int, probe_format: ChainFormat = "words") -> float:
    """The generated tokens ``point`` is expected to add after the probe: a self-consistency
    the probe's chains can vote in samples only the chains they do not stand in for."""
    strategy = strategies.build(point.strategy)
    if isinstance(strategy, SelfConsistency) and strategy.takes_earlier_chains(probe_format):
        return point.generated_tokens * max(0, strategy.n - probe_samples) / strategy.n
    return point.generated_tokens


def choose(profile: Profile, difficulty: str, tokens_left: float | None,
           token_price: float | None = None) -> Choice:
    """The worthiest point at ``difficulty`` (accuracy less ``token_price``, default the
    profile's, per 1000 added tokens) whose added tokens fit ``tokens_left`` (None: no
    limit); ties to the cheaper, then the earlier point."""
    price = profile.token_price if token_price is None else token_price
    costs = [added_tokens(p, profile.probe_samples, profile.probe_format) for p in profile.points]
    ranked = sorted(range(len(costs)), key=lambda i: (costs[i], i))
    fitting = [i for i in ranked if tokens_left is None or costs[i] <= tokens_left]
    if not fitting:
        cheapest = ranked[0]
        return Choice(profile.points[cheapest], costs[cheapest], False, (
            f"no profiled strategy fits the {tokens_left:.0f} generated tokens left; running the "
            f"cheapest (about {costs[cheapest]:.0f} more tokens), cut by the budget"))
    best = max(fitting, key=lambda i: profile.points[i].accuracy[difficulty] - price * costs[i] / 1000)
    point = profile.points[best]
    room = "no token limit" if tokens_left is None else f"{tokens_left:.0f} generated tokens left"
    return Choice(point, costs[best], True, (
        f"{difficulty} question; with {room} and {price:g} accuracy asked of every 1000 more "
        f"tokens, {_label(point.strategy)} is the best trade among {len(fitting)} profiled "
        f"strategies that fit (accuracy {point.accuracy[difficulty]:.2f} at this difficulty, "
        f"about {costs[best]:.0f} more tokens)"))


@dataclass(frozen=True)
class Decision:
    strategy: dict[str, Any]
    difficulty: str
    feature: str
    """The profile's predictor: 'agreement' or 'score'."""
    feature_value: float
    """What the predictor read from the probe, which the thresholds bucket."""
    agreement: float
    """The probe answers' agreement, whichever the predictor (the server's responses show it)."""
    probe_answers: list[str | None]
    tokens_left: float | None
    expected_accuracy: float
    expected_tokens: float
    """What the chosen strategy is expected to generate after the probe."""
    fits: bool
    reason: str
    probe_format: ChainFormat
    probe: list[Candidate] = field(repr=False)
    """The probe's chains, which a chosen self-consistency of their format counts as its own."""

    def to_dict(self) -> dict[str, Any]:
        """Everything but the probe's chains (their answers are in ``probe_answers``)."""
        return copy.deepcopy({f.name: getattr(self, f.name) for f in fields(self) if f.name != "probe"})


def probe_for(profile: Profile) -> Strategy:
    """The probe ``profile`` reads difficulty from: best-of-N scored by its probe verifier
    when it has one (the candidates then carry scores), else self-consistency."""
    sampling = SamplingConfig(max_tokens=profile.probe_tokens)
    shape = {"n": profile.probe_samples, "sampling": sampling, "format": profile.probe_format}
    if profile.probe_verifier is None:
        return SelfConsistency(**shape)
    return BestOfN(**shape, verifier=verifiers.build(profile.probe_verifier))


async def decide(problem: Problem, ctx: Run, profile: Profile,
                 token_price: float | None = None) -> Decision:
    """Probe ``problem`` on ``ctx`` (charged to its ledger) and choose from ``profile`` at
    ``token_price`` (None: the profile's)."""
    result = await probe_for(profile).run(problem, ctx)
    answers = [c.answer for c in result.candidates]
    share = agreement(answers) if answers else 0.0
    value, caveat = (share, "") if profile.predictor == "agreement" else _mean_score(result.candidates)
    difficulty = profile.thresholds.bucket(value)
    tokens_left = ctx.ledger.remaining("generated_tokens")
    choice = choose(profile, difficulty, tokens_left, token_price)
    return Decision(
        strategy=dict(choice.point.strategy), difficulty=difficulty, feature=profile.predictor,
        feature_value=round(value, 3), agreement=round(share, 3), probe_answers=answers,
        tokens_left=tokens_left, expected_accuracy=choice.point.accuracy[difficulty],
        expected_tokens=round(choice.added_tokens, 1), fits=choice.fits,
        reason=caveat + choice.reason, probe_format=profile.probe_format, probe=result.candidates,
    )


async def run_decision(strategy: Strategy, problem: Problem, ctx: Run, decision: Decision) -> Result:
    """Run the chosen ``strategy`` on the probe's ``ctx``; a self-consistency over chains of
    the probe's format counts the probe's chains as its first ones."""
    if isinstance(strategy, SelfConsistency) and strategy.takes_earlier_chains(decision.probe_format):
        return await strategy.vote_with(problem, ctx, decision.probe, decision.probe_format)
    return await strategy.run(problem, ctx)


def _mean_score(candidates: list[Candidate]) -> tuple[float, str]:
    """The mean verifier score of the probe candidates that have one, and what to say when
    none has (the feature is then 0.0: nothing suggests the question is easy)."""
    scores = [c.score for c in candidates if c.score is not None]
    if not scores:
        return 0.0, "the probe verifier scored none of the probe answers, so the score is 0.0; "
    return fmean(scores), ""


@strategies.register("auto")
class Auto(Strategy):
    """Probe the question, then run the strategy its profile says is best at that difficulty
    for the tokens left. The chosen strategy runs with its own profiled config (its prompt,
    sampling and thinking format), not this one's."""

    name = "auto"

    profile: Path | None = Field(
        None, description="The profile to choose from (`ponder tune` makes one); None: the "
        "shipped profile of the embedded model.",
    )
    force_profile: bool = Field(
        False, description="Use the profile even when it was made for another model than the "
        "backend's (its accuracies are then another model's).",
    )
    token_price: float | None = Field(
        None, ge=0, description="Accuracy a strategy must gain for every 1000 more generated "
        "tokens to be chosen over a cheaper one; 0: the most accurate whatever it costs; "
        "None: the profile's.",
    )
    _loaded: Profile = PrivateAttr()

    @model_validator(mode="after")
    def _load_profile(self) -> Auto:
        try:
            self._loaded = load_profile(self.profile)
            _check_parts(self._loaded, self.profile_path)
        except BadRequestError as exc:
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type=PydanticCustomError("profile", "{reason}", {"reason": str(exc)}),
                loc=("profile",), input=str(self.profile_path),
            )]) from None
        return self

    @property
    def profile_path(self) -> Path:
        return self.profile or default_profile_path()

    def check_backend(self, backend: Mapping[str, Any]) -> None:
        self._check_model(backend.get("model"))

    def _check_model(self, model: str | None) -> None:
        check_model(self._loaded, self.profile_path, model, self.force_profile)

    async def run(self, problem: Problem, ctx: Run) -> Result:
        self._check_model(ctx.backend.model)  # a backend built in Python was never checked
        decision = await decide(problem, ctx, self._loaded, self.token_price)
        result = await run_decision(strategies.build(decision.strategy), problem, ctx, decision)
        result.strategy = self.name
        result.details["auto"] = decision.to_dict()
        return result


def _check_parts(profile: Profile, path: Path) -> None:
    """Build the probe and every point's strategy once, so a profile whose verifier or
    strategy configs cannot be built fails when 'auto' is built, before any model loads."""
    try:
        probe_for(profile)
    except BadRequestError as exc:
        raise BadRequestError(f"profiles ({path}): probe_verifier: {exc}") from None
    for index, point in enumerate(profile.points):
        try:
            strategies.build(point.strategy)
        except BadRequestError as exc:
            raise BadRequestError(f"profiles ({path}): points.{index}: {exc}") from None


def _label(strategy: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in strategy.items() if k != "name" and not isinstance(v, dict))
    return f"{strategy.get('name')}({params})"
