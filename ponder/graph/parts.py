"""What counts as a part of a strategy graph, and how each kind of part is named in configs.

A part is a configured object that does one job for the strategy holding it: a sub-strategy
(a sampler), a verifier (scorer or step scorer), a step generator, chain trimming settings.
Each kind's base class declares its ``part_kind`` (``ponder.core.parts``); a field holds a
part when its annotation names a class of a declared kind, so nothing else needs to declare
it (the way DSPy finds sub-modules by walking attributes).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel

import ponder.strategies  # noqa: F401  (defines and registers every built-in part)
import ponder.verifiers  # noqa: F401
from ponder.core.parts import part_bases
from ponder.core.registry import Registry, registry_for

ROOT = "strategy"
"""The path of a graph's root: paths then read like config keys (``strategy.sampler.k``)."""

KINDS: dict[type, str] = {base: str(base.part_kind) for base in part_bases()}
"""Part base types (the classes that declare a ``part_kind``) and what each is called."""

REGISTRIES: dict[type, Registry] = {
    base: registry for base in KINDS if (registry := registry_for(base)) is not None
}
"""Part types that configs name by a registry ``name``."""


@dataclass(frozen=True)
class Slot:
    """A field of a model that holds a part."""

    field: str
    types: tuple[type, ...]
    """The part types the field's annotation allows."""
    optional: bool
    """Whether None is allowed (the part may be left out)."""


def kind_of(value: object) -> str:
    """The kind of part ``value`` is ('strategy', 'verifier', ...), or its type's name."""
    for base, kind in KINDS.items():
        if isinstance(value, base):
            return kind
    return type(value).__name__


def base_of(cls: type) -> type | None:
    """The part base ``cls`` derives from (None: not a part type)."""
    return next((base for base in KINDS if isinstance(cls, type) and issubclass(cls, base)), None)


def label_of(part: BaseModel) -> str:
    """How configs name ``part``: its registry name, else its class name."""
    base = base_of(type(part))
    registry = REGISTRIES.get(base) if base is not None else None
    name = registry.name_of(type(part)) if registry is not None else None
    return name or type(part).part_label or type(part).__name__


def slots(cls: type[BaseModel]) -> Iterator[Slot]:
    """The fields of ``cls`` that hold parts, in declaration order."""
    for name, info in cls.model_fields.items():
        allowed = _flatten(info.annotation)
        parts = tuple(t for t in allowed if base_of(t) is not None)
        if parts:
            yield Slot(name, parts, type(None) in allowed)


def _flatten(annotation: object) -> tuple[object, ...]:
    """The members of a union annotation (the annotation itself when it is not one)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(m for arg in typing.get_args(annotation) for m in _flatten(arg))
    return (annotation,)
