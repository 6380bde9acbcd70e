"""``strategy: "auto"``: compute-optimal allocation of a request's budget.

The idea is that of "Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling
Model Parameters" (Snell et al., 2024): the best way to spend test-time compute depends on
how hard the question is, so estimate the difficulty first, then pick the strategy and size
that profiles show to be most accurate at that difficulty for the compute available.

The policy, step by step:

1. Probe: sample ``probe_samples`` short chains (``probe_tokens`` each, one engine request;
   their tokens count against the request's budget like any other work).
2. Difficulty: the agreement among the probe answers (share equivalent to the most common
   one): at or above ``easy_at`` it is *easy*, below ``hard_below`` *hard*, else *medium*.
3. Choose: among the profile's points whose mean generated tokens fit in what the budget has
   left after the probes, the one with the best accuracy for that difficulty; ties go to the
   cheaper point, then to the earlier one in the file. When none fits, the cheapest point
   runs (under the budget, which cuts it short if need be) and the response says so.
4. Run the chosen strategy under the same budget ledger.

The response's ``ponder.auto`` says what was chosen and why: difficulty, agreement, the
probe answers, tokens left, expected accuracy, and the reason in words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ponder.core.problem import Problem
from ponder.runtime import Run
from ponder.server.profiles import Profile, ProfilePoint, agreement
from ponder.strategies import SamplingConfig, SelfConsistency


@dataclass(frozen=True)
class Choice:
    point: ProfilePoint
    fits: bool
    """False when no point fitted the tokens left and the cheapest was taken."""
    reason: str


def choose(profile: Profile, difficulty: str, tokens_left: float | None) -> Choice:
    """The most accurate point at ``difficulty`` whose tokens fit ``tokens_left`` (None: no
    limit); ties to the cheaper, then the earlier point."""
    order = {id(p): i for i, p in enumerate(profile.points)}
    fitting = [p for p in profile.points if tokens_left is None or p.generated_tokens <= tokens_left]
    if not fitting:
        cheapest = min(profile.points, key=lambda p: (p.generated_tokens, order[id(p)]))
        return Choice(cheapest, False, (
            f"no profiled strategy fits the {tokens_left:.0f} generated tokens left; running the "
            f"cheapest ({cheapest.generated_tokens:.0f} tokens per problem), cut by the budget"))
    best = min(fitting, key=lambda p: (-p.accuracy[difficulty], p.generated_tokens, order[id(p)]))
    room = "no token limit" if tokens_left is None else f"{tokens_left:.0f} generated tokens left"
    return Choice(best, True, (
        f"{difficulty} question; with {room}, {_label(best.strategy)} has the best profiled "
        f"accuracy at this difficulty ({best.accuracy[difficulty]:.2f}, about "
        f"{best.generated_tokens:.0f} tokens) among {len(fitting)} strategies that fit"))


@dataclass(frozen=True)
class Decision:
    strategy: dict[str, Any]
    difficulty: str
    agreement: float
    probe_answers: list[str | None]
    tokens_left: float | None
    expected_accuracy: float
    expected_tokens: float
    fits: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def decide(problem: Problem, ctx: Run, profile: Profile) -> Decision:
    """Probe ``problem`` on ``ctx`` (charged to its ledger) and choose from ``profile``."""
    probe = SelfConsistency(
        n=profile.probe_samples, sampling=SamplingConfig(max_tokens=profile.probe_tokens)
    )
    result = await probe.run(problem, ctx)
    answers = [c.answer for c in result.candidates]
    share = agreement(answers) if answers else 0.0
    difficulty = profile.thresholds.bucket(share)
    tokens_left = ctx.ledger.remaining("generated_tokens")
    choice = choose(profile, difficulty, tokens_left)
    return Decision(
        strategy=dict(choice.point.strategy), difficulty=difficulty, agreement=round(share, 3),
        probe_answers=answers, tokens_left=tokens_left,
        expected_accuracy=choice.point.accuracy[difficulty],
        expected_tokens=choice.point.generated_tokens, fits=choice.fits, reason=choice.reason,
    )


def _label(strategy: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in strategy.items() if k != "name" and not isinstance(v, dict))
    return f"{strategy.get('name')}({params})"
