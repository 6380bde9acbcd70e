"""Every configs/strategy/ file: it builds as `ponder solve` and `ponder run` load it, it says
only what differs from the defaults of the classes it configures, and every field of those
classes takes a command-line override whether or not the file lists it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from ponder.config import compose, config_dir
from ponder.errors import BadRequestError
from ponder.graph.defaults import class_default_configs, class_defaults
from ponder.strategies import Strategy, strategies
from ponder.strategies.cot_trim import TrimSettings
from ponder.strategies.step_generators import step_generators

FILES: dict[str, str] = {
    "adaptive": "adaptive",
    "astar": "astar",
    "auto": "auto",
    "beam": "beam",
    "beam_spec_reason": "beam",
    "beam_with_judge": "beam",
    "best_of_n": "best_of_n",
    "best_of_n_over_budget_forcing": "best_of_n",
    "budget_forcing": "budget_forcing",
    "cot_trim": "cot_trim",
    "deepconf": "deepconf",
    "dvts": "dvts",
    "first_finish": "first_finish",
    "mcts": "mcts",
    "particle_filter": "particle_filter",
    "particle_gibbs": "particle_gibbs",
    "sc_over_short_mk": "self_consistency",
    "sc_trimmed": "self_consistency",
    "self_consistency": "self_consistency",
    "self_consistency_programs": "self_consistency",
    "short_mk": "short_mk",
    "spec_reason": "spec_reason",
    "tot_dfs": "tot_dfs",
}
"""Each shipped file and the registry name of the strategy it builds."""
SHIPPED = sorted(p.stem for p in (config_dir() / "strategy").glob("*.yaml"))


def raw(name: str) -> dict[str, Any]:
    return yaml.safe_load((config_dir() / "strategy" / f"{name}.yaml").read_text())


def built(name: str) -> Strategy:
    return strategies.build(compose([f"strategy={name}"])["strategy"])


def restated(config: dict[str, Any], part: BaseModel, path: str) -> list[str]:
    """The keys of ``config`` (what a file gives for ``part``) whose value is the default of
    the field of ``part``'s class, down into the sub-parts it configures."""
    found = []
    for key, value in config.items():
        if key in ("defaults", "name"):
            continue
        current = getattr(part, key)
        if isinstance(value, dict) and isinstance(current, BaseModel):
            found += restated(value, current, f"{path}.{key}")
        elif current == type(part).model_fields[key].get_default(call_default_factory=True):
            found.append(f"{path}.{key}")
    return found


def missing(config: dict[str, Any], part: BaseModel, path: str) -> list[str]:
    """The fields of ``part``'s class (and of its sub-parts') absent from the composed
    ``config``: keys a plain command-line override could not reach."""
    found = [f"{path}.{key}" for key in class_defaults(type(part)) if key not in config]
    for key, value in config.items():
        current = getattr(part, key, None)
        if isinstance(value, dict) and isinstance(current, BaseModel):
            found += missing(value, current, f"{path}.{key}")
    return found


def lists(config: dict[str, Any], field: str) -> bool:
    """Whether ``config`` gives the dotted ``field``."""
    head, _, rest = field.partition(".")
    if head not in config:
        return False
    return not rest or isinstance(config[head], dict) and lists(config[head], rest)


def test_the_table_holds_exactly_the_shipped_files() -> None:
    assert sorted(FILES) == SHIPPED


@pytest.mark.parametrize("command", ["config", "run"], ids=["solve", "run"])
@pytest.mark.parametrize(("name", "kind"), FILES.items(), ids=list(FILES))
def test_the_file_builds_and_validates(name: str, kind: str, command: str) -> None:
    config = compose([f"strategy={name}"], config_name=command)["strategy"]
    strategy = strategies.build(config)  # builds the graph and validates it
    assert type(strategy) is strategies.get(kind) and strategy.name == config["name"] == kind


@pytest.mark.parametrize("name", FILES)
def test_the_file_restates_no_class_default(name: str) -> None:
    assert restated(raw(name), built(name), "strategy") == []


@pytest.mark.parametrize("name", FILES)
def test_every_field_of_the_classes_it_configures_is_in_the_composed_config(name: str) -> None:
    assert missing(compose([f"strategy={name}"])["strategy"], built(name), "strategy") == []


STORED = (
    [("strategy", name, strategies.get(name)) for name in strategies.names]
    + [("step_generator", name, step_generators.get(name)) for name in step_generators.names]
    + [("trim", "settings", TrimSettings)]
)


@pytest.mark.parametrize(("kind", "name", "cls"), STORED, ids=[f"{k}/{n}" for k, n, _ in STORED])
def test_the_stored_defaults_build_the_class_defaults(kind: str, name: str, cls: type) -> None:
    stored = class_default_configs()[kind][name]
    builders = {"strategy": strategies.build, "step_generator": step_generators.build}
    build = builders.get(kind, cls.model_validate)
    assert build({**stored, "name": name} if kind in builders else stored) == cls()


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        (["strategy=self_consistency", "strategy.n=16"], "n", 16),
        (["strategy=best_of_n", "strategy.selection=weighted"], "selection", "weighted"),
        (["strategy=beam", "strategy.beam_width=2"], "beam_width", 2),
        (["strategy=beam", 'strategy.step.answer_marker="Answer:"'], "step.answer_marker", "Answer:"),
        (["strategy=particle_gibbs", "strategy.resampling=multinomial"], "resampling", "multinomial"),
        (["strategy=sc_trimmed", "strategy.trim.probe.window=4"], "trim.probe.window", 4),
        (["strategy=sc_over_short_mk", "strategy.sampler.sampling.max_tokens=64"],
         "sampler.sampling.max_tokens", 64),
        (["strategy=beam_spec_reason", "strategy.step_generator.threshold=8"],
         "step_generator.threshold", 8.0),
        (["strategy=self_consistency", "strategy.thinking=qwen3"], "thinking.name", "qwen3"),
        (["strategy=self_consistency", "strategy.format=mixed", "strategy.program.mixed_share=0.25"],
         "program.mixed_share", 0.25),
        (["strategy=self_consistency_programs", "strategy.program.sandbox.timeout_s=2"],
         "program.sandbox.timeout_s", 2.0),
    ],
    ids=["n", "selection", "beam_width", "nested-step", "subclass-field", "trim", "sampler-field",
         "step-generator-field", "thinking-preset", "program-share", "program-sandbox"],
)
@pytest.mark.parametrize("command", ["config", "run"], ids=["solve", "run"])
def test_an_override_of_a_key_the_file_does_not_list(
    overrides: list[str], field: str, value: object, command: str
) -> None:
    assert not lists(raw(overrides[0].removeprefix("strategy=")), field)
    part: Any = strategies.build(compose(overrides, config_name=command)["strategy"])
    for attribute in field.split("."):
        part = getattr(part, attribute)
    assert part == value


@pytest.mark.parametrize(
    "override", ["strategy.nn=3", "strategy.step.nope=1"], ids=["top-level", "nested"]
)
def test_a_misspelt_key_is_still_refused(override: str) -> None:
    with pytest.raises(BadRequestError, match="is not in struct"):
        compose(["strategy=beam", override])
