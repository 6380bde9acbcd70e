"""Building strategy graphs: plain constructors, ponder's registry names and Hydra
``_target_`` configs give equal objects; bad configs are refused naming the path."""

from __future__ import annotations

import copy

import pytest
import yaml

from ponder.config import compose
from ponder.errors import BadRequestError
from ponder.graph import graph_config, load_graph
from ponder.strategies import (
    BeamSearch,
    BestOfN,
    BudgetForcing,
    SelfConsistency,
    ShortMK,
    strategies,
)
from ponder.strategies.cot_probe import ProbeExit
from ponder.strategies.cot_trim import TrimSettings
from ponder.strategies.step_generators import SpeculativeSteps
from ponder.verifiers import StepJudge
from ponder.verifiers.judge import LLMJudge

CASES = [
    (
        SelfConsistency(n=4, sampler=ShortMK(k=4, m=2)),
        """
        name: self_consistency
        n: 4
        sampler: {name: short_mk, k: 4, m: 2}
        """,
        """
        _target_: ponder.strategies.SelfConsistency
        n: 4
        sampler: {_target_: ponder.strategies.ShortMK, k: 4, m: 2}
        """,
    ),
    (
        BestOfN(n=3, verifier=LLMJudge(mode="digit"), sampler=BudgetForcing(max_thinking_tokens=64)),
        """
        name: best_of_n
        n: 3
        verifier: {name: llm_judge, mode: digit}
        sampler: {name: budget_forcing, max_thinking_tokens: 64}
        """,
        """
        _target_: ponder.strategies.BestOfN
        n: 3
        verifier: {_target_: ponder.verifiers.judge.LLMJudge, mode: digit}
        sampler: {_target_: ponder.strategies.BudgetForcing, max_thinking_tokens: 64}
        """,
    ),
    (
        BeamSearch(n=4, beam_width=2, verifier=StepJudge(aggregation="min"),
                   step_generator=SpeculativeSteps(threshold=5.0)),
        """
        name: beam
        n: 4
        beam_width: 2
        verifier: {name: step_judge, aggregation: min}
        step_generator: {name: speculative, threshold: 5.0}
        """,
        """
        _target_: ponder.strategies.BeamSearch
        n: 4
        beam_width: 2
        verifier: {_target_: ponder.verifiers.StepJudge, aggregation: min}
        step_generator: {_target_: ponder.strategies.step_generators.SpeculativeSteps, threshold: 5.0}
        """,
    ),
    (
        SelfConsistency(n=2, trim=TrimSettings(judge=None, probe=ProbeExit(interval=16))),
        """
        name: self_consistency
        n: 2
        trim: {judge: null, probe: {interval: 16}}
        """,
        """
        _target_: ponder.strategies.SelfConsistency
        n: 2
        trim:
          _target_: ponder.strategies.cot_trim.TrimSettings
          judge: null
          probe: {_target_: ponder.strategies.cot_probe.ProbeExit, interval: 16}
        """,
    ),
]
IDS = ["sc-over-short-mk", "best-of-n-over-budget-forcing", "beam-speculative-judge", "sc-trimmed"]


@pytest.mark.parametrize(("python", "registry_yaml", "hydra_yaml"), CASES, ids=IDS)
def test_python_registry_and_hydra_build_equal_graphs(
    python: object, registry_yaml: str, hydra_yaml: str
) -> None:
    registry_config = yaml.safe_load(registry_yaml)
    hydra_config = yaml.safe_load(hydra_yaml)
    before = copy.deepcopy((registry_config, hydra_config))
    assert load_graph(registry_config) == python
    assert load_graph(hydra_config) == python
    assert strategies.build(registry_config) == python
    assert (registry_config, hydra_config) == before  # the configs are not changed


def test_a_shipped_composed_config_equals_its_python_graph() -> None:
    built = load_graph(compose(["strategy=sc_over_short_mk"])["strategy"])
    assert built == SelfConsistency(n=4, sampler=ShortMK(k=4, m=2))


def test_command_line_overrides_reach_nested_parts() -> None:
    built = load_graph(compose(["strategy=sc_over_short_mk", "strategy.sampler.m=3"])["strategy"])
    assert built.sampler == ShortMK(k=4, m=3)


BAD = [
    ({"name": "self_consistency", "sampler": {"name": "reference_answer"}},
     "strategy.sampler: 'reference_answer' is a verifier, but sampler takes a strategy"),
    ({"name": "self_consistency", "sampler": {"name": "nope"}},
     "strategy.sampler: unknown strategy 'nope'; choose one of: adaptive, astar"),
    ({"name": "best_of_n", "verifier": {"name": "short_mk"}},
     "strategy.verifier: 'short_mk' is a strategy, but verifier takes a verifier"),
    ({"name": "self_consistency", "sampler": {"name": "short_mk", "k": 2, "m": 3}},
     "strategy.sampler: m must be <= k, got m=3, k=2"),
    ({"name": "self_consistency", "sampler": {"name": "self_consistency", "sampler": {"name": "short_mk", "k": 0}}},
     "strategy.sampler.sampler.k: Input should be greater than or equal to 1 (got 0)"),
    ({"name": "beam", "step_generator": {"name": "speculative", "threshold": 12}},
     "strategy.step_generator.threshold: Input should be less than or equal to 9"),
    ({"name": "beam", "step_generator": {"name": "sampling"}},
     "strategy.step_generator: unknown step generator 'sampling'; choose one of: sample, speculative"),
    ({"name": "best_of_n", "sampler": "budget_forcing"},
     "strategy.verifier: self_certainty reads token logprobs"),
    ({"name": "self_consistency", "sampler": "short_mk", "trim": {}},
     "strategy: trim applies to self-consistency's own chains"),
    ({"_target_": "ponder.strategies.SelfConsistency", "n": 0},
     "strategy.n: Input should be greater than or equal to 1 (got 0)"),
    ({"_target_": "ponder.strategies.BestOfN", "sampler": {"_target_": "ponder.strategies.BudgetForcing"}},
     "strategy.verifier: self_certainty reads token logprobs"),
    ({"n": 4}, "strategy config needs a 'name'"),
    ({"_target_": "os.system", "command": "true"},
     "strategy._target_: 'os.system' is not one of ponder's config classes"),
    ({"_target_": "ponder.strategies.SelfConsistency", "sampler": {"_target_": "ponder.api.shutdown"}},
     "strategy.sampler._target_: 'ponder.api.shutdown' is not one of ponder's config classes"),
]


@pytest.mark.parametrize(("config", "message"), BAD, ids=[
    "verifier-as-sampler", "unknown-sampler", "strategy-as-verifier", "sampler-m-above-k",
    "two-deep-bad-value", "threshold-out-of-range", "unknown-step-generator", "logprobs",
    "trim-with-sampler", "hydra-bad-value", "hydra-logprobs", "no-name",
    "hydra-target-outside-ponder", "hydra-target-not-a-config-class",
])
def test_bad_configs_are_refused_naming_the_path(config: dict, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        load_graph(config)
    assert message in str(caught.value)


def test_a_yaml_config_that_contains_itself_is_a_cycle(tmp_path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("&me {name: self_consistency, sampler: *me}\n")
    with pytest.raises(BadRequestError, match="strategy.sampler: cycle: this config contains itself"):
        load_graph(graph_config(str(path)))


def test_a_yaml_file_takes_dotted_overrides(tmp_path) -> None:
    path = tmp_path / "sc.yaml"
    path.write_text("name: self_consistency\nn: 4\nsampler: {name: short_mk, k: 4, m: 2}\n")
    config = graph_config(str(path), ["sampler.k=6", "n=2"])
    assert load_graph(config) == SelfConsistency(n=2, sampler=ShortMK(k=6, m=2))


def test_a_missing_yaml_file_is_named(tmp_path) -> None:
    with pytest.raises(BadRequestError, match="does not exist"):
        graph_config(str(tmp_path / "nothing.yaml"))
