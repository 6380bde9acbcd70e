"""Budget properties of every registered strategy, on the scripted backend, for random
budgets, random concurrency (runs sharing one parent ledger) and random cancellation:

1. no limit is ever exceeded: no ledger's spending passes any count limit of its budget, and
   a run that finishes does so by the earliest deadline of its ledger's lineage;
2. usage adds up to what the engine did: the finished runs' result usage plus what the
   cancelled runs spent is the root ledger's spending, which is the backend's own usage
   (verdict requests of judges count as verifier calls, not model calls);
3. a result cut short names a limit that is set in its ledger's lineage; a result not cut
   short names none.

Time is virtual (``VirtualTimeLoop``): token delays and deadlines are exact and cost no real
time, so the ``seconds`` limit is checked without slack and every example is reproducible.
"""

from __future__ import annotations

import asyncio
import functools
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from property_helpers import PROBLEM, HashScores, VirtualTimeLoop, is_verdict, scripted_backend

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.budgets.budget import LIMITS
from ponder.core.result import Result
from ponder.core.sampling import SamplingConfig
from ponder.core.usage import Usage
from ponder.runtime import Run
from ponder.search.expansion import StepConfig
from ponder.strategies import (
    MCTS,
    AdaptiveSampling,
    AStar,
    BeamSearch,
    BestOfN,
    BudgetForcing,
    CoTTrim,
    DeepConf,
    DiverseVerifierTreeSearch,
    FirstFinish,
    ParticleFilter,
    ParticleGibbs,
    SelfConsistency,
    ShortMK,
    SpecReason,
    Strategy,
    TreeOfThoughtsDFS,
    strategies,
)
from ponder.strategies.cot_judge import ThoughtJudge
from ponder.strategies.cot_probe import ProbeExit
from ponder.strategies.cot_trim import TrimSettings
from ponder.strategies.step_generators import SpeculativeSteps
from ponder.verifiers import LLMJudge, ReferenceAnswer, SelfCertainty, StepJudge, Verifier
from ponder.verifiers.confidence import ConfidenceSettings
from ponder.verifiers.self_eval import SelfEvaluation
from tests.unit.strategies.test_auto import PROFILE as WORDS_PROFILE

EXAMPLES_PER_STRATEGY = 120
"""With the 12 registered strategies, over 1,400 examples in all."""

SECONDS_SLACK = 1e-9
"""Virtual seconds a finished run may end past its deadline (float rounding only)."""

COUNTED = ("generated_tokens", "prompt_tokens", "cached_prompt_tokens", "cancelled_tokens",
           "model_calls", "verifier_calls")
"""The usage counts that must add up exactly across results, ledgers and the backend."""

Draw = Callable[[st.SearchStrategy[Any]], Any]


# -- budgets -----------------------------------------------------------------------------------
_LIMIT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "generated_tokens": st.integers(1, 400),
    "total_tokens": st.integers(1, 4000),
    "model_calls": st.integers(1, 16),
    "verifier_calls": st.integers(1, 16),
    "seconds": st.sampled_from([0.0005, 0.002, 0.005, 0.01, 0.03, 0.1, 0.3]),
}


def test_every_limit_of_a_budget_is_generated() -> None:
    assert set(_LIMIT_VALUES) == set(LIMITS)


@st.composite
def budgets(draw: Draw) -> Budget:
    """A budget with a random subset of limits: none, one alone, or several at once."""
    names = draw(st.sets(st.sampled_from(sorted(LIMITS))))
    return Budget(**{name: draw(_LIMIT_VALUES[name]) for name in names})


# -- the strategies, small --------------------------------------------------------------------
def _sampling(draw: Draw, low: int = 4, high: int = 60) -> SamplingConfig:
    return SamplingConfig(max_tokens=draw(st.integers(low, high)))


def _outcome_verifier(draw: Draw) -> Verifier:
    return draw(st.sampled_from(
        [SelfCertainty(), LLMJudge(mode="digit"), ReferenceAnswer(), HashScores()]
    ))


def _step_scorer(draw: Draw) -> Verifier:
    return draw(st.sampled_from(
        [SelfCertainty(), StepJudge(mode="digit"), LLMJudge(mode="digit"), HashScores()]
    ))


def _step(draw: Draw) -> StepConfig:
    return StepConfig(
        max_step_tokens=draw(st.integers(2, 40)),
        answer_marker=draw(st.sampled_from([None, "Answer:"])),
    )


def _speculative(draw: Draw, backend: ScriptedBackend) -> SpeculativeSteps:
    return SpeculativeSteps(
        draft=backend,
        threshold=draw(st.sampled_from([0.0, 4.5, 9.0])),
    )


def _sampler(draw: Draw) -> Strategy | None:
    """Plain sampling, or a small sub-strategy whose runs are pooled (child ledgers)."""
    kind = draw(st.sampled_from(["plain", "plain", "short_mk", "budget_forcing"]))
    if kind == "short_mk":
        k = draw(st.integers(1, 3))
        return ShortMK(k=k, m=draw(st.integers(1, k)), sampling=_sampling(draw))
    if kind == "budget_forcing":
        return BudgetForcing(
            min_thinking_tokens=2, max_thinking_tokens=12, max_answer_tokens=4,
            max_continuations=1, sampling=SamplingConfig(max_tokens=16),
        )
    return None


def best_of_n(draw: Draw, backend: ScriptedBackend) -> Strategy:
    sampler = _sampler(draw)
    verifier = _outcome_verifier(draw)
    if sampler is not None and verifier.needs_logprobs:
        verifier = HashScores()  # pooled candidates from these samplers carry no logprobs
    return BestOfN(
        n=draw(st.integers(1, 4)), sampling=_sampling(draw), verifier=verifier,
        selection=draw(st.sampled_from(["argmax", "weighted"])), sampler=sampler,
        pool=draw(st.sampled_from(["selected", "all"])),
    )


def _trim_settings(draw: Draw) -> dict[str, Any]:
    probe = draw(st.sampled_from([None, ProbeExit(interval=6, window=2, max_tokens=4)]))
    judge = draw(st.sampled_from([None, ThoughtJudge(mode="digit")]))
    return {"probe": probe, "judge": judge, "answer_max_tokens": draw(st.integers(1, 8))}


def self_consistency(draw: Draw, backend: ScriptedBackend) -> Strategy:
    n, sampling = draw(st.integers(1, 4)), _sampling(draw)
    if draw(st.booleans()):
        return SelfConsistency(n=n, sampling=sampling, sampler=_sampler(draw))
    sampling = _sampling(draw, 4, 120)
    return SelfConsistency(n=n, sampling=sampling, trim=TrimSettings(**_trim_settings(draw)))


def short_mk(draw: Draw, backend: ScriptedBackend) -> Strategy:
    k = draw(st.integers(1, 4))
    return ShortMK(k=k, m=draw(st.integers(1, k)), sampling=_sampling(draw))


def first_finish(draw: Draw, backend: ScriptedBackend) -> Strategy:
    k = draw(st.integers(1, 4))
    return FirstFinish(k=k, j=draw(st.integers(1, k)), sampling=_sampling(draw))


def _step_search(cls: type[Strategy]) -> Callable[[Draw, ScriptedBackend], Strategy]:
    def build(draw: Draw, backend: ScriptedBackend) -> Strategy:
        n, beam_width = draw(st.sampled_from([(1, 1), (2, 1), (2, 2), (4, 2), (4, 4)]))
        step_generator = _speculative(draw, backend) if draw(st.booleans()) else None
        return cls(
            n=n, beam_width=beam_width, max_steps=draw(st.integers(1, 3)),
            lookahead=draw(st.integers(0, 1)), drop_duplicates=draw(st.booleans()),
            step=_step(draw), sampling=_sampling(draw, 4, 80), verifier=_step_scorer(draw),
            selection=draw(st.sampled_from(["argmax", "majority", "weighted"])),
            step_generator=step_generator,
        )

    return build


def astar(draw: Draw, backend: ScriptedBackend) -> Strategy:
    return AStar(
        k=draw(st.integers(1, 3)), width=draw(st.integers(1, 2)),
        max_steps=draw(st.integers(1, 3)),
        cost_weight=draw(st.sampled_from([0.0, 1.0])), step=_step(draw),
        sampling=_sampling(draw, 4, 80), verifier=_step_scorer(draw),
    )


def mcts(draw: Draw, backend: ScriptedBackend) -> Strategy:
    simulations = draw(st.integers(1, 6))
    step_generator = _speculative(draw, backend) if draw(st.booleans()) else None
    return MCTS(
        k=draw(st.integers(1, 3)), simulations=simulations,
        parallel=draw(st.integers(1, simulations)), max_depth=draw(st.integers(1, 3)),
        selection_rule=draw(st.sampled_from(["puct", "uct"])),
        prior=draw(st.sampled_from(["mean_logprob", "score", "uniform"])),
        rollout_weight=draw(st.sampled_from([0.0, 0.5])), step=_step(draw),
        sampling=_sampling(draw, 4, 80), verifier=_step_scorer(draw),
        selection=draw(st.sampled_from(["visits", "argmax", "majority"])),
        step_generator=step_generator,
    )


def tot_dfs(draw: Draw, backend: ScriptedBackend) -> Strategy:
    return TreeOfThoughtsDFS(
        k=draw(st.integers(1, 3)), threshold=draw(st.sampled_from([0.0, 0.5, 0.9])),
        max_depth=draw(st.integers(1, 3)), solutions=draw(st.integers(1, 2)),
        max_expansions=draw(st.integers(1, 6)), step=_step(draw),
        sampling=_sampling(draw, 4, 80), verifier=_step_scorer(draw),
    )


def particle_filter(draw: Draw, backend: ScriptedBackend) -> Strategy:
    return ParticleFilter(
        n=draw(st.integers(1, 4)), max_steps=draw(st.integers(1, 3)), step=_step(draw),
        sampling=_sampling(draw, 4, 80), verifier=_step_scorer(draw),
        ess_threshold=draw(st.sampled_from([0.0, 0.5, 1.0])),
        selection=draw(st.sampled_from(["argmax", "majority", "weighted", "sample"])),
    )


def particle_gibbs(draw: Draw, backend: ScriptedBackend) -> Strategy:
    n = draw(st.integers(2, 4))
    return ParticleGibbs(
        n=n, references=draw(st.integers(1, n - 1)), iterations=draw(st.integers(1, 2)),
        max_steps=draw(st.integers(1, 3)), step=_step(draw), sampling=_sampling(draw, 4, 80),
        verifier=_step_scorer(draw),
    )


def spec_reason(draw: Draw, backend: ScriptedBackend) -> Strategy:
    return SpecReason(
        n=draw(st.integers(1, 3)), steps=_speculative(draw, backend),
        step=StepConfig(max_step_tokens=draw(st.integers(2, 40))),
        max_steps=draw(st.integers(1, 4)), sampling=_sampling(draw, 4, 80),
    )


def budget_forcing(draw: Draw, backend: ScriptedBackend) -> Strategy:
    max_thinking = draw(st.integers(1, 24))
    answer = draw(st.integers(1, 8))
    return BudgetForcing(
        min_thinking_tokens=draw(st.integers(0, max_thinking)),
        max_thinking_tokens=max_thinking, max_answer_tokens=answer,
        max_continuations=draw(st.integers(0, 2)), n=draw(st.integers(1, 3)),
        mode=draw(st.sampled_from(["auto", "round_trip"])),
        sampling=SamplingConfig(max_tokens=max_thinking + answer + draw(st.integers(0, 10))),
    )


def cot_trim(draw: Draw, backend: ScriptedBackend) -> Strategy:
    sampling = _sampling(draw, 4, 120)
    return CoTTrim(
        n=draw(st.integers(1, 3)), sampling=sampling,
        max_thinking_tokens=draw(st.sampled_from([None, sampling.max_tokens])),
        **_trim_settings(draw),
    )


def adaptive(draw: Draw, backend: ScriptedBackend) -> Strategy:
    verifier = draw(st.sampled_from(  # a verdict is a digit: self-evaluation reads 9 as "no"
        [SelfEvaluation(yes_word="1", no_word="9"), LLMJudge(mode="digit"), HashScores()]
    ))
    return AdaptiveSampling(
        n_max=draw(st.integers(1, 6)), waves=draw(st.sampled_from([(1,), (1, 2), (2, 3)])),
        threshold=draw(st.sampled_from([0.5, 1.0])), verifier=verifier,
        prune_at=draw(st.sampled_from([(), (2,), (2, 3)])),
        prune_share=draw(st.sampled_from([0.3, 0.5])), sampling=_sampling(draw),
    )


def deepconf(draw: Draw, backend: ScriptedBackend) -> Strategy:
    n = draw(st.integers(1, 5))
    return DeepConf(
        n=n, mode=draw(st.sampled_from(["online", "offline"])), warmup=draw(st.integers(1, n)),
        keep=draw(st.sampled_from([0.1, 0.5, 1.0])),
        consensus=draw(st.sampled_from([None, 0.6, 0.95])),
        confidence=ConfidenceSettings(window=draw(st.integers(1, 8))), sampling=_sampling(draw),
    )


@functools.cache
def _words_profile() -> Path:
    path = Path(tempfile.mkdtemp(prefix="ponder-profile-")) / "profile.yaml"
    path.write_text(yaml.safe_dump(WORDS_PROFILE.model_dump(mode="json")))
    return path


def auto(draw: Draw, backend: ScriptedBackend) -> Strategy:
    """'auto' over a profile whose probe and points are chains in words, with the price drawn:
    the shipped profile probes with programs, whose sandbox is a subprocess, and the virtual
    clock these runs keep has no subprocesses (its choices and reuse: tests/unit/strategies)."""
    return strategies.build({"name": "auto", "profile": str(_words_profile()),
                             "token_price": draw(st.sampled_from([0.0, 0.1, 1.0]))})


BUILDERS: dict[str, Callable[[Draw, ScriptedBackend], Strategy]] = {
    "adaptive": adaptive,
    "astar": astar,
    "auto": auto,
    "beam": _step_search(BeamSearch),
    "best_of_n": best_of_n,
    "budget_forcing": budget_forcing,
    "cot_trim": cot_trim,
    "deepconf": deepconf,
    "dvts": _step_search(DiverseVerifierTreeSearch),
    "first_finish": first_finish,
    "mcts": mcts,
    "particle_filter": particle_filter,
    "particle_gibbs": particle_gibbs,
    "self_consistency": self_consistency,
    "short_mk": short_mk,
    "spec_reason": spec_reason,
    "tot_dfs": tot_dfs,
}


def test_every_registered_strategy_is_covered() -> None:
    assert sorted(BUILDERS) == strategies.names


# -- one example: concurrent runs under a shared ledger, some cancelled -----------------------
@dataclass
class Branch:
    """One run of the strategy under the root: its ledger, when it may last, how it ended."""

    run: Run
    deadline: float | None
    cancel_after_steps: int | None
    cancel_after_seconds: float | None
    result: Result | None = None
    cancelled: bool = False
    ended_at: float | None = None


def _deadline(ledger: Ledger, opened_at: float) -> float | None:
    limits = [ledger.budget.seconds for ledger in ledger.lineage() if ledger.budget.seconds]
    return opened_at + min(limits) if limits else None


def _set_limits(ledger: Ledger) -> set[str]:
    return {
        name for line in ledger.lineage() for name in LIMITS
        if getattr(line.budget, name) is not None
    }


def _counts(usage: Usage) -> dict[str, int]:
    return {name: getattr(usage, name) for name in COUNTED}


async def _cancel_after(task: asyncio.Task[Any], steps: int) -> None:
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()


async def _run_all(strategy: Strategy, branches: list[Branch], loop: VirtualTimeLoop) -> None:
    tasks, helpers = [], []
    for branch in branches:
        task = asyncio.ensure_future(strategy.run(PROBLEM, branch.run))
        task.add_done_callback(lambda _, b=branch: setattr(b, "ended_at", loop.time()))
        if branch.cancel_after_steps is not None:
            helpers.append(asyncio.ensure_future(_cancel_after(task, branch.cancel_after_steps)))
        if branch.cancel_after_seconds is not None:
            loop.call_later(branch.cancel_after_seconds, task.cancel)
        tasks.append(task)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for helper in helpers:
        helper.cancel()  # its run is over
    # Work a run left behind (a batch in flight) settles before the books are compared.
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.gather(*rest, return_exceptions=True)
    for branch, outcome in zip(branches, outcomes):
        if isinstance(outcome, asyncio.CancelledError):
            branch.cancelled = True
        elif isinstance(outcome, BaseException):
            raise outcome  # a strategy must return its best answer, not raise, under a budget
        else:
            branch.result = outcome


def _record_events(branches: list[Branch], backend: ScriptedBackend) -> None:
    """What the example exercised, for ``--hypothesis-show-statistics``."""
    for branch in branches:
        if branch.cancelled:
            event("a run was cancelled")
        elif branch.result is not None and branch.result.budget_exhausted:
            event(f"a run was cut by {branch.result.exhausted_by}")
        else:
            event("a run finished within its budget")
    if backend.usage.cancelled_tokens:
        event("the engine aborted samples")
    if any(is_verdict(request) for request in backend.requests):
        event("judges were asked")


_cancels = st.sampled_from(["never", "never", "after_steps", "after_seconds"]).flatmap(
    lambda how: st.just((None, None)) if how == "never"
    else st.tuples(st.integers(0, 60), st.none()) if how == "after_steps"
    else st.tuples(st.none(), st.sampled_from([0.0, 0.001, 0.004, 0.02, 0.1]))
)
"""Per run: (event-loop steps, virtual seconds) after which its task is cancelled."""


@st.composite
def scenarios(draw: Draw) -> dict[str, Any]:
    runs = draw(st.integers(1, 3))
    return {
        "salt": draw(st.integers(0, 2**16)),
        "root": draw(budgets()),
        "children": [draw(st.none() | budgets()) for _ in range(runs)],
        "cancels": [draw(_cancels) for _ in range(runs)],
    }


@pytest.mark.parametrize("name", strategies.names)
@settings(
    max_examples=EXAMPLES_PER_STRATEGY,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(), data=st.data())
def test_budgets_hold_usage_adds_up_and_cuts_name_a_set_limit(
    name: str, scenario: dict[str, Any], data: st.DataObject
) -> None:
    if name not in BUILDERS:
        pytest.fail(f"strategy {name!r} is registered but has no builder in this test")
    backend = scripted_backend(scenario["salt"])
    strategy = BUILDERS[name](data.draw, backend)
    note(f"strategy: {strategy!r}")
    note(f"scenario: {scenario!r}")

    loop = VirtualTimeLoop()
    try:
        root = Run(backend, Ledger(scenario["root"], clock=loop.time), rng=random.Random(0))
        branches = []
        for budget, (steps, seconds) in zip(scenario["children"], scenario["cancels"]):
            child = root.child(budget)
            branches.append(Branch(child, _deadline(child.ledger, loop.time()), steps, seconds))
        loop.run_until_complete(_run_all(strategy, branches, loop))
    finally:
        loop.close()

    _record_events(branches, backend)

    # (1) no limit is ever exceeded (spending only grows, so its final value is its peak)
    for ledger in [root.ledger] + [branch.run.ledger for branch in branches]:
        spent, budget = ledger.spent, ledger.budget
        for limit in ("generated_tokens", "total_tokens", "model_calls", "verifier_calls"):
            cap = getattr(budget, limit)
            assert cap is None or getattr(spent, limit) <= cap, (
                f"{limit}: spent {getattr(spent, limit)} of {cap} ({ledger!r})"
            )
    for branch in branches:
        if branch.result is not None and branch.deadline is not None:
            assert branch.ended_at is not None
            assert branch.ended_at <= branch.deadline + SECONDS_SLACK, (
                f"the run ended at {branch.ended_at:.6f} s, its deadline was {branch.deadline:g} s"
            )

    # (2) usage adds up: results + cancelled runs = root ledger = what the backend did
    total = Usage()
    for branch in branches:
        spent = branch.run.ledger.spent
        if branch.result is not None:
            assert _counts(branch.result.usage) == _counts(spent), (
                "the result's usage differs from what its run's ledger was charged"
            )
            total.add(branch.result.usage)
        else:
            total.add(spent)
    assert _counts(total) == _counts(root.ledger.spent)
    engine, books = backend.usage, root.ledger.spent
    verdicts = sum(is_verdict(request) for request in backend.requests)
    assert {
        "generated_tokens": books.generated_tokens,
        "prompt_tokens": books.prompt_tokens,
        "cached_prompt_tokens": books.cached_prompt_tokens,
        "cancelled_tokens": books.cancelled_tokens,
        "model_calls": books.model_calls + verdicts,
    } == {
        "generated_tokens": engine.generated_tokens,
        "prompt_tokens": engine.prompt_tokens,
        "cached_prompt_tokens": engine.cached_prompt_tokens,
        "cancelled_tokens": engine.cancelled_tokens,
        "model_calls": engine.model_calls,
    }, "the ledger's books differ from the backend's own usage"

    # (3) a cut names a limit that is set; no cut names none
    for branch in branches:
        result = branch.result
        if result is None:
            continue
        if result.budget_exhausted:
            assert result.exhausted_by in _set_limits(branch.run.ledger), (
                f"cut by {result.exhausted_by!r}, but the limits set are "
                f"{sorted(_set_limits(branch.run.ledger))}"
            )
        else:
            assert result.exhausted_by is None
