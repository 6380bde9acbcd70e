"""Building a strategy graph from configuration: the same object from Python constructors,
from ponder's registry names, or from Hydra ``_target_`` instantiation.

Registry configs nest ``name:`` mappings (or bare names) wherever a field holds a part::

    name: self_consistency
    n: 4
    sampler: {name: short_mk, k: 4, m: 2}

Parts are built bottom-up, each at its path in the graph, so a bad value names where it is
(``strategy.sampler.m: ...``, the key a command-line override would use) and a part of the wrong kind says so (a verifier's name
where a sampler goes). Hydra configs name classes instead (``_target_:
ponder.strategies.SelfConsistency``) and are built by ``hydra.utils.instantiate``. Either way
the result is validated as a whole graph (``validate``) before it is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError
from ponder.graph.parts import KINDS, REGISTRIES, ROOT, Slot, base_of, slots
from ponder.graph.validation import validate
from ponder.strategies.base import Strategy


def load_graph(config: Strategy | Mapping[str, Any] | str) -> Strategy:
    """A validated strategy from a Strategy object, a registry name or config mapping, or a
    Hydra config with ``_target_``."""
    if isinstance(config, Mapping) and "_target_" in config:
        strategy = _instantiate(config)
    else:
        strategy = _build(config, Slot("strategy", (Strategy,), optional=False), None, ())
    if not isinstance(strategy, Strategy):
        raise BadRequestError(f"a strategy graph's root must be a strategy, got {type(strategy).__name__}")
    validate(strategy)
    return strategy


def _build(config: Any, slot: Slot, path: str | None, seen: tuple[int, ...]) -> Any:
    """The part ``config`` describes for ``slot`` (at ``path``; None for the root). Values
    that are not registry configs are left for pydantic to validate."""
    registry = next((REGISTRIES[b] for b in _bases(slot) if b in REGISTRIES), None)
    if registry is None or isinstance(config, BaseModel) or config is None:
        return config
    if isinstance(config, str):
        config = {"name": config}
    if path is None and not (isinstance(config, Mapping) and config.get("name")):
        names = ", ".join(registry.names)
        raise BadRequestError(f"{registry.kind} config needs a 'name'; choose one of: {names}")
    if not isinstance(config, Mapping) or "name" not in config:
        return config  # no name: a config of the field's own type (pydantic decides)
    name = str(config["name"])
    where = path or ROOT
    if id(config) in seen:
        raise BadRequestError(f"invalid strategy graph: {where}: cycle: this config contains itself")
    if path is not None and name not in registry.names:
        raise BadRequestError(f"{where}: {_unknown(name, registry.kind, slot)}")
    cls = registry.get(name)
    fields = {key: value for key, value in config.items() if key != "name"}
    for part in slots(cls):
        if part.field in fields:
            fields[part.field] = _build(
                fields[part.field], part, f"{where}.{part.field}", (*seen, id(config))
            )
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(where, exc)) from None


def _unknown(name: str, kind: str, slot: Slot) -> str:
    """Why ``name`` cannot fill ``slot``: another kind's name, or no name at all."""
    for base, registry in REGISTRIES.items():
        if name in registry.names and base not in _bases(slot):
            return (
                f"{name!r} is a {KINDS[base]}, but {slot.field} takes a {registry_kind(slot)}"
            )
    known = next(r for t, r in REGISTRIES.items() if t in _bases(slot)).names
    return f"unknown {kind} {name!r}; choose one of: {', '.join(known)}"


def _bases(slot: Slot) -> list[type | None]:
    """The part base of each type ``slot`` takes: a field typed with a registered class
    (``steps: SpeculativeSteps``) is named through its base's registry too."""
    return [base_of(t) for t in slot.types]


def registry_kind(slot: Slot) -> str:
    return " or ".join(KINDS[b] for b in _bases(slot) if b in KINDS)


def _instantiate(config: Mapping[str, Any]) -> Any:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    _check_targets(config, ROOT)
    try:
        return instantiate(dict(config), _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            raise BadRequestError(describe_validation_error("strategy", cause)) from None
        raise BadRequestError(f"cannot instantiate the strategy graph: {exc}") from None


def graph_config(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A strategy config from ``spec``: a YAML file (overrides are dotted keys of the file,
    ``sampler.k=4``), or a config name in ``configs/strategy/`` (overrides are ponder's config
    overrides, as for ``ponder solve``: ``strategy.sampler.k=4``)."""
    from pathlib import Path

    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return _file_config(path, overrides)
    from ponder.config import compose

    return compose([f"strategy={spec}", *overrides])["strategy"]


def _file_config(path: Any, overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not path.is_file():
        raise BadRequestError(f"config file {str(path)!r} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
        changes = OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)))
    except (yaml.YAMLError, OmegaConfBaseException) as exc:
        raise BadRequestError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise BadRequestError(f"{path} must hold a mapping (a strategy config), got {type(config).__name__}")
    return _merged(config, changes) if changes else config  # type: ignore[arg-type]


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def _check_targets(config: Any, path: str) -> None:
    """Every ``_target_`` must name one of ponder's config classes (pydantic models under
    ``ponder.``): instantiation must never call an arbitrary function."""
    from hydra.utils import get_class

    if isinstance(config, Mapping):
        target = config.get("_target_")
        if target is not None:
            try:
                cls = get_class(str(target)) if str(target).startswith("ponder.") else None
            except Exception:  # noqa: BLE001 - hydra raises plain exceptions for bad paths
                cls = None
            if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
                raise BadRequestError(
                    f"{path}._target_: {target!r} is not one of ponder's config classes "
                    f"(e.g. ponder.strategies.SelfConsistency)"
                )
        for key, value in config.items():
            _check_targets(value, f"{path}.{key}")
    elif isinstance(config, list | tuple):
        for index, value in enumerate(config):
            _check_targets(value, f"{path}.{index}")
