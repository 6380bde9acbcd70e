"""Name -> class tables for configured components (strategies, verifiers, backends), so a
config file or the command line can say ``strategy=self_consistency`` and get a validated
object, with errors that name the bad field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ponder.errors import BadRequestError, UnknownNameError, describe_validation_error

T = TypeVar("T", bound=BaseModel)


_BY_BASE: dict[type, Registry[Any]] = {}


def registry_for(base: type) -> Registry[Any] | None:
    """The registry of the components derived from ``base`` (None when it has none)."""
    return _BY_BASE.get(base)


class Registry(Generic[T]):
    """Components of one kind, looked up by the ``name`` key of their config."""

    def __init__(self, kind: str, base: type[T] | None = None) -> None:
        """``base``: the class every registered component derives from; the registry is
        then found from it (``registry_for``), as the graph layer does."""
        self.kind = kind
        self._classes: dict[str, type[T]] = {}
        if base is not None:
            _BY_BASE[base] = self

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            return cls

        return decorate

    @property
    def names(self) -> list[str]:
        return sorted(self._classes)

    def name_of(self, cls: type) -> str | None:
        """The name ``cls`` is registered under (None when it is not)."""
        return next((name for name, known in self._classes.items() if known is cls), None)

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names) from None

    def build(self, config: Mapping[str, Any] | T | str) -> T:
        """A validated component from its name, its config mapping (with ``name``), or itself."""
        if isinstance(config, BaseModel):
            return config  # type: ignore[return-value]
        if isinstance(config, str):
            config = {"name": config}
        fields = dict(config)
        name = fields.pop("name", None)
        if not name:
            raise BadRequestError(f"{self.kind} config needs a 'name'; choose one of: {', '.join(self.names)}")
        cls = self.get(str(name))
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise BadRequestError(describe_validation_error(self.kind, exc)) from None
