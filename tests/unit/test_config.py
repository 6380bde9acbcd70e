"""The config tree composes with overrides, and bad overrides fail with a readable message."""

from __future__ import annotations

import pytest

from ponder.budgets import Budget
from ponder.config import compose
from ponder.errors import BadRequestError
from ponder.strategies import BestOfN, SelfConsistency, strategies


def test_defaults_compose_to_self_consistency_on_the_embedded_model() -> None:
    config = compose()
    assert config["strategy"]["name"] == "self_consistency"
    assert config["backend"] == {**config["backend"], "kind": "vllm", "model": "embedded"}
    assert all(value is None for value in config["budget"].values())


@pytest.mark.parametrize("name", ["self_consistency", "best_of_n", "short_mk", "first_finish"])
def test_each_strategy_config_builds_the_class_defaults(name: str) -> None:
    built = strategies.build(compose([f"strategy={name}"])["strategy"])
    assert built == strategies.get(name)()


def test_overrides_reach_the_built_objects() -> None:
    config = compose(
        ["strategy=best_of_n", "strategy.n=16", "strategy.selection=weighted",
         "strategy.sampling.max_tokens=99", "budget.generated_tokens=4000"]
    )
    strategy = strategies.build(config["strategy"])
    assert isinstance(strategy, BestOfN)
    assert (strategy.n, strategy.selection, strategy.sampling.max_tokens) == (16, "weighted", 99)
    assert Budget(**{k: v for k, v in config["budget"].items() if v is not None}).generated_tokens == 4000


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("strategy.nn=3", "Key 'nn' is not in struct"),
        ("strategy=nonesuch", "Could not find 'strategy/nonesuch'"),
        ("budget.tokens=5", "Key 'tokens' is not in struct"),
        ("backend=nowhere", "Could not find 'backend/nowhere'"),
    ],
    ids=["unknown-param", "unknown-strategy", "unknown-budget-field", "unknown-backend"],
)
def test_bad_overrides_name_what_is_wrong(override: str, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        compose([override])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "self_consistency", "n": 0}, r"strategy.n: Input should be greater than or equal to 1 \(got 0\)"),
        ({"name": "self_consistency", "temperature": 1.0}, "strategy.temperature: unknown parameter"),
        ({"name": "majority"}, "unknown strategy 'majority'; choose one of: .*best_of_n, .*self_consistency, short_mk"),
        ({"n": 3}, "strategy config needs a 'name'"),
        ({"name": "best_of_n", "verifier": "oracle"}, "unknown verifier 'oracle'"),
        ({"name": "best_of_n", "selection": "max"}, "strategy.selection"),
        ({"name": "beam", "selection": "highest"},
         r"strategy.selection: Input should be 'argmax', 'majority' or 'weighted' \(got 'highest'\)"),
    ],
    ids=["n-zero", "misplaced-param", "unknown-name", "no-name", "unknown-verifier", "bad-selection",
         "old-selection-name"],
)
def test_strategy_validation_errors_name_the_field(config: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        strategies.build(config)


def test_building_does_not_mutate_the_config() -> None:
    config = {"name": "self_consistency", "n": 4, "sampling": {"max_tokens": 10}}
    snapshot = {**config, "sampling": dict(config["sampling"])}
    assert strategies.build(config) == SelfConsistency(n=4, sampling={"max_tokens": 10})
    assert config == snapshot
