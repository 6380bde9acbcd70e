"""Parts of a strategy graph declare their kind, so the graph layer finds them (and names them
in messages and configs) without knowing any class by name.

A part is a configured object that does one job for the strategy holding it: a sub-strategy,
a verifier, a step generator, chain trimming settings. The base class of each kind sets
``part_kind``; every subclass is then a part of that kind.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel


class Part(BaseModel):
    """Base of every kind of graph part."""

    part_kind: ClassVar[str | None] = None
    """Set on a kind's base class: what its parts are called in messages ('verifier')."""
    part_label: ClassVar[str | None] = None
    """How configs name a part of a kind that has no registry (chain trimming: 'trim')."""


def part_bases() -> list[type[Part]]:
    """The classes that declare a kind (those whose own body sets ``part_kind``), among the
    subclasses of ``Part`` defined so far."""
    bases, todo = [], list(Part.__subclasses__())
    while todo:
        cls = todo.pop(0)
        if cls.__dict__.get("part_kind") is not None:
            bases.append(cls)
        todo.extend(cls.__subclasses__())
    return bases
