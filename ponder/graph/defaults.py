"""The classes' own defaults as Hydra configs, so a strategy YAML says only what differs.

Each config class is stored in Hydra's ConfigStore under ``class_defaults/<kind>/<name>``
(kinds: ``strategy`` and ``step_generator`` by registry name, ``trim/settings`` for chain
trimming). A strategy YAML puts its class's node first in its defaults list::

    defaults:
      - /class_defaults/strategy@_here_: beam
      - /verifier@verifier: step_judge
      - _self_
    name: beam
    n: 4

so every field of the class is in the composed config, with the class's default, and a
command-line override of one the YAML does not list (``strategy.beam_width=2``) works as it
does for one it lists, while a misspelt key is still refused. A verifier field is left out:
its config comes from the ``verifier`` group, which an override such as
``verifier@strategy.verifier=prm`` replaces as a whole.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ponder.core.thinking import ThinkingFormat
from ponder.errors import UnknownNameError
from ponder.graph.parts import slots
from ponder.strategies.base import strategies
from ponder.strategies.cot_trim import TrimSettings
from ponder.strategies.step_generators import step_generators
from ponder.verifiers.base import Verifier

GROUP = "class_defaults"


def class_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    """The default of every field of ``cls`` as plain config values, verifier fields left
    out; a thinking format that is a preset is given by its name (``thinking: plain``)."""
    verifier_fields = {slot.field for slot in slots(cls) if Verifier in slot.types}
    instance = cls()
    config = instance.model_dump(mode="json", exclude=verifier_fields)
    for field, value in instance:
        if isinstance(value, ThinkingFormat) and _is_preset(value):
            config[field] = value.name
    return config


def class_default_configs() -> dict[str, dict[str, dict[str, Any]]]:
    """Per kind, per name, the defaults stored for it."""
    return {
        "strategy": {name: class_defaults(strategies.get(name)) for name in strategies.names},
        "step_generator": {
            name: class_defaults(step_generators.get(name)) for name in step_generators.names
        },
        "trim": {"settings": class_defaults(TrimSettings)},
    }


def store_class_defaults() -> None:
    """Put every class's defaults in Hydra's ConfigStore (again: it replaces what is there)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for kind, configs in class_default_configs().items():
        for name, config in configs.items():
            store.store(group=f"{GROUP}/{kind}", name=name, node=config)


def _is_preset(value: ThinkingFormat) -> bool:
    try:
        return ThinkingFormat.model_validate(value.name) == value
    except UnknownNameError:
        return False
