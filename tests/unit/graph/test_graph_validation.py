"""Strategy graph validation: each invalid graph is refused with the path of the part at
fault and the reason; every shipped strategy config is a valid graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.config import compose, config_dir
from ponder.errors import BadRequestError
from ponder.graph import discover, load_graph, validate
from ponder.strategies import BeamSearch, BestOfN, BudgetForcing, SelfConsistency, ShortMK
from ponder.strategies.cot_trim import TrimSettings
from ponder.verifiers.reference import ReferenceAnswer


def _cycle() -> SelfConsistency:
    strategy = SelfConsistency()
    object.__setattr__(strategy, "sampler", strategy)
    return strategy


def _deep_cycle() -> SelfConsistency:
    inner = SelfConsistency()
    outer = SelfConsistency(sampler=inner)
    object.__setattr__(inner, "sampler", outer)
    return outer


INVALID = [
    (SelfConsistency.model_construct(sampler=ReferenceAnswer()),
     "strategy.sampler: reference_answer is a verifier, but sampler takes a strategy"),
    (BeamSearch.model_construct(step_generator=ShortMK()),
     "strategy.step_generator: short_mk is a strategy, but step_generator takes a step generator"),
    (BeamSearch.model_construct(verifier=None), "strategy.verifier: required part missing (a verifier)"),
    (BeamSearch(verifier="reference_answer"),
     "strategy.verifier: reference_answer scores only finished answers"),
    (SelfConsistency(sampler=BeamSearch(verifier="reference_answer")),
     "strategy.sampler.verifier: reference_answer scores only finished answers"),
    (BestOfN(verifier="self_certainty", sampler=BudgetForcing()),
     "strategy.verifier: self_certainty reads token logprobs, which the candidates of its "
     "sampler (budget_forcing) do not carry"),
    (BeamSearch(verifier="self_certainty", step_generator="speculative"),
     "strategy.verifier: self_certainty reads token logprobs, which steps written by its step "
     "generator do not carry"),
    (SelfConsistency.model_construct(sampler=ShortMK(), trim=TrimSettings()),
     "strategy.trim: trimming applies to the strategy's own chains, not its sampler's"),
    (_cycle(), "strategy.sampler: cycle: this part is strategy, which holds it"),
    (_deep_cycle(), "strategy.sampler.sampler: cycle: this part is strategy, which holds it"),
]


@pytest.mark.parametrize(
    ("strategy", "message"), INVALID,
    ids=["sampler-is-a-verifier", "step-generator-is-a-strategy", "step-scorer-missing",
         "step-scorer-needs-final-answers", "nested-step-scorer", "logprobs-from-a-sampler",
         "logprobs-from-a-step-generator", "trim-with-a-sampler", "cycle", "cycle-two-deep"],
)
def test_invalid_graphs_are_refused_naming_the_path(strategy: object, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        validate(strategy)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    strategy = SelfConsistency(
        sampler=BestOfN.model_construct(verifier="self_certainty", sampler=BeamSearch(verifier="reference_answer"))
    )
    with pytest.raises(BadRequestError) as caught:
        validate(strategy)
    text = str(caught.value)
    assert "strategy.sampler.verifier: 'self_certainty' is a str" in text
    assert "strategy.sampler.sampler.verifier: reference_answer scores only finished answers" in text


def test_a_valid_graph_holds_every_part_with_its_role() -> None:
    strategy = BestOfN(sampler=SelfConsistency(sampler=ShortMK()), verifier="llm_judge")
    graph = validate(strategy)
    assert sorted(graph.nodes) == ["strategy", "strategy.sampler", "strategy.sampler.sampler",
                                   "strategy.verifier"]
    assert graph.nodes["strategy.sampler.sampler"]["label"] == "short_mk"
    assert graph.nodes["strategy.verifier"]["kind"] == "verifier"
    assert graph.edges["strategy", "strategy.sampler"]["role"] == "sampler"


def test_a_shared_part_appears_once_per_place_it_is_used() -> None:
    inner = ShortMK()
    graph = discover(BestOfN(sampler=SelfConsistency(sampler=inner), verifier="llm_judge"))
    assert graph.nodes["strategy.sampler.sampler"]["part"] is inner


STRATEGY_CONFIGS = sorted(p.stem for p in (config_dir() / "strategy").glob("*.yaml"))


@pytest.mark.parametrize("name", STRATEGY_CONFIGS)
def test_every_shipped_strategy_config_is_a_valid_graph(name: str) -> None:
    strategy = load_graph(compose([f"strategy={name}"])["strategy"])
    assert validate(strategy).number_of_nodes() >= 1


def test_the_composed_examples_are_shipped() -> None:
    shipped = set(STRATEGY_CONFIGS)
    assert {"sc_over_short_mk", "beam_with_judge", "best_of_n_over_budget_forcing",
            "sc_trimmed", "beam_spec_reason"} <= shipped
    assert Path(config_dir() / "strategy" / "sc_over_short_mk.yaml").is_file()
