"""The search space of ``ponder tune``: arms (strategy configs) and the ranges of their parameters.

A space is a YAML mapping (``configs/space/*.yaml``) of arm labels to an arm: the strategy
config it starts from (a ``configs/strategy/`` name, so any strategy graph the config tree
holds) and its parameters, each a list of choices or a numeric range::

    best_of_n:
      strategy: best_of_n
      params:
        n: [2, 4, 8]
        verifier: [self_certainty, self_eval]     # a config group: configs/verifier/ names
        sampling.temperature: {low: 0.3, high: 1.0}

The search is conditional: Optuna first picks the arm, then only that arm's parameters, each
under its own name (``best_of_n.n`` and ``self_consistency.n`` are separate parameters with their
own ranges and their own history). Everything is checked before any model loads: every arm's
config composes, every parameter is a key its strategy has, and the strategy builds at every
choice and at both ends of every range.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ponder.config import compose
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError, PonderError
from ponder.strategies import strategies
from ponder.tuning.study import StudyDir

GROUP_PARAMS = {"verifier": "verifier@strategy.verifier"}
"""Parameters whose choices are config names of a group, and the override that picks one."""

RESERVED = frozenset({"arm", "backend", "budget", "concurrency", "dataset", "hydra", "metrics",
                      "progress", "resume", "seed", "space", "strategy", "tune"})
"""Top-level keys of the tune config: an arm's label becomes one, so it may not be one of these."""

Choice = str | int | float | bool | None


RANGE_KEYS = {"low", "high", "log", "step"}
"""The keys that make a parameter's mapping a range rather than parameters nested below it."""


class Range(BaseModel):
    """A numeric range: integers when both ends are, else floats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: float
    high: float
    log: bool = Field(False, description="Sample on a log scale (both ends > 0).")
    step: float | None = Field(None, gt=0, description="Only values low + k * step.")

    @property
    def integer(self) -> bool:
        return float(self.low).is_integer() and float(self.high).is_integer() and (
            self.step is None or float(self.step).is_integer())

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("log and step do not go together")
        return self

    def ends(self) -> list[int | float]:
        cast = int if self.integer else float
        return [cast(self.low), cast(self.high)]

    def grid(self) -> list[float] | None:
        """A float range with a step as its values, rounded (0.9, not 0.9000000000000001):
        Optuna's own float steps carry the binary noise into the trial's config and folder."""
        if self.step is None or self.integer:
            return None
        count = int(round((self.high - self.low) / self.step, 9)) + 1
        return sorted({round(self.low + i * self.step, 9) for i in range(count)})


class Arm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: str = Field(description="The strategy config it starts from (configs/strategy/NAME).")
    params: dict[str, list[Choice] | Range] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _dotted(cls, value: Any) -> Any:
        """A command-line override cannot write the dotted key ``sampling.max_tokens``: it
        nests (``{sampling: {max_tokens: ...}}``), so a mapping that is not a range is read
        as the keys below it."""
        return dict(_dotted_params(value)) if isinstance(value, Mapping) else value

    @model_validator(mode="after")
    def _choices(self) -> Arm:
        for key, values in self.params.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"params.{key}: needs at least one choice")
            if isinstance(values, list) and len(set(map(repr, values))) != len(values):
                raise ValueError(f"params.{key}: a choice is listed twice")
        return self


def _dotted_params(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in params.items():
        if isinstance(value, Mapping) and not RANGE_KEYS & set(value):
            yield from _dotted_params(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


class ResolvedArm(BaseModel):
    """An arm with its strategy composed: what a trial needs without the config tree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: dict[str, Any]
    params: dict[str, list[Choice] | Range]
    groups: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="For a group parameter: each choice's composed config."
    )

    def trial_strategy(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The strategy config with ``values`` (parameter -> value) applied."""
        unknown = set(values) - set(self.params)
        if unknown:
            raise BadRequestError(f"trial: parameters {sorted(unknown)} are not in the arm")
        config = OmegaConf.create(self.strategy)
        for key, value in values.items():
            chosen = self.groups[key][str(value)] if key in self.groups else value
            OmegaConf.update(config, key, chosen, merge=False)
        return OmegaConf.to_container(config)  # type: ignore[return-value]


class Space(BaseModel):
    """Arm label -> arm, resolved."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arms: dict[str, ResolvedArm] = Field(min_length=1)


def resolve_space(space: Mapping[str, Any] | None) -> Space:
    """Check ``space`` (the config's ``space`` node) and compose each arm's strategy; every
    error names the arm and the parameter."""
    if not space:
        raise BadRequestError("space: the search space is empty; pick one (space=NAME, a "
                              "configs/space/ file) or give arms (space.LABEL.strategy=...)")
    arms = {}
    for label, spec in space.items():
        if label in RESERVED or not str(label).isidentifier():
            raise BadRequestError(f"space.{label}: an arm's label must be a Python identifier and "
                                  f"not one of {sorted(RESERVED)}")
        try:
            arm = Arm.model_validate(spec)
        except ValidationError as exc:
            raise BadRequestError(describe_validation_error(f"space.{label}", exc)) from None
        arms[label] = _resolve_arm(label, arm)
    return Space(arms=arms)


def _resolve_arm(label: str, arm: Arm) -> ResolvedArm:
    where = f"space.{label}"
    base = compose([f"strategy={arm.strategy}"], config_name="run")["strategy"]
    groups: dict[str, dict[str, Any]] = {}
    for key, values in arm.params.items():
        if key in GROUP_PARAMS:
            if not isinstance(values, list) or "verifier" not in base:
                raise BadRequestError(f"{where}.params.{key}: needs a list of configs/{key}/ names, "
                                      f"and the strategy {arm.strategy!r} must have a {key}")
            groups[key] = {str(v): compose([f"strategy={arm.strategy}", f"{GROUP_PARAMS[key]}={v}"],
                                           config_name="run")["strategy"][key] for v in values}
        elif OmegaConf.select(OmegaConf.create(base), key, default=_ABSENT) is _ABSENT:
            raise BadRequestError(f"{where}.params.{key}: the strategy {arm.strategy!r} has no "
                                  f"such parameter (its keys: {sorted(base)})")
    resolved = ResolvedArm(strategy=base, params=arm.params, groups=groups)
    _check_builds(where, resolved)
    return resolved


_ABSENT = object()


def _check_builds(where: str, arm: ResolvedArm) -> None:
    """Build the strategy at each parameter's extremes (the others at their first value), so a
    range the strategy refuses fails now, not in trial 17."""
    extremes = {key: values if isinstance(values, list) else values.ends()
                for key, values in arm.params.items()}
    first = {key: values[0] for key, values in extremes.items()}
    for key, values in extremes.items():
        for value in values:
            try:
                strategies.build(arm.trial_strategy({**first, key: value}))
            except PonderError as exc:
                raise BadRequestError(f"{where}.params.{key}={value}: {exc}") from None


def suggest(cfg: DictConfig, trial: Any) -> None:
    """The Optuna sweeper's ``custom_search_space``: pick the arm, then its parameters. Each
    parameter's name is the override that sets it (``++LABEL.KEY``)."""
    space = Space.model_validate_json(StudyDir(cfg.tune.study).space_file.read_text())
    label = trial.suggest_categorical("arm", sorted(space.arms))
    for key, values in space.arms[label].params.items():
        name = f"++{label}.{key}"
        if isinstance(values, list) or values.grid():
            trial.suggest_categorical(name, values if isinstance(values, list) else values.grid())
        elif values.integer:
            trial.suggest_int(name, int(values.low), int(values.high),
                              step=int(values.step or 1), log=values.log)
        else:
            trial.suggest_float(name, values.low, values.high, step=values.step, log=values.log)


def trial_values(settings: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The arm's parameter values a trial's config holds (the nested ``LABEL`` node, flat)."""
    node = settings.get(label) or {}
    return dict(_flatten(node))


def _flatten(node: Mapping[str, Any], prefix: str = "") -> itertools.chain[tuple[str, Any]]:
    return itertools.chain.from_iterable(
        _flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping) else [(f"{prefix}{key}", value)]
        for key, value in node.items()
    )
