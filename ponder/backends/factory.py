"""What a user or a config names as a backend: a model name or a config mapping, checked and
turned into the key the engine pool files it under, and the backend built from it.

Building is the pool's job (``ponder.backends.pool.engines.backend(spec)``): every other
caller gets the pool's backend, so one config means one engine or client per process.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any

from pydantic import ValidationError

from ponder.backends.base import Backend
from ponder.console import prepare_engine_output
from ponder.errors import BadRequestError, UnknownNameError, describe_validation_error, missing_values

BACKEND_KINDS = ("vllm", "openai")
MISSING = "???"
"""OmegaConf's mark of a value the config requires and the user has not given."""

BackendSpec = Mapping[str, Any] | str
"""A model name for the in-process engine ('embedded', a local folder, a hub name) or a
config mapping with ``kind`` (default 'vllm')."""


def backend_key(spec: BackendSpec) -> Hashable:
    """The pool's key for ``spec``: its ``VllmConfig`` for the in-process engine (so a name and
    the mapping that means the same engine share it), its settings for a server's client.
    A bad config fails here, before anything is built."""
    kind, settings = _kind_and_settings(spec)
    if kind == "vllm":
        return _vllm_config(settings)
    return (kind, json.dumps(settings, sort_keys=True, default=repr))


async def open_backend(spec: BackendSpec) -> Backend:
    """A new backend for ``spec``, owned by the caller (the pool)."""
    kind, settings = _kind_and_settings(spec)
    if kind == "vllm":
        from ponder.backends.vllm_engine import VllmBackend

        prepare_engine_output()  # before vLLM is imported and spawns its engine core
        return await VllmBackend.start(_vllm_config(settings))
    from ponder.backends.openai_backend import OpenAIBackend

    try:
        return OpenAIBackend(**settings)
    except TypeError as exc:
        raise BadRequestError(f"backend: {exc}") from None


def _kind_and_settings(spec: BackendSpec) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        spec = {"kind": "vllm", "model": spec}
    settings = {k: v for k, v in dict(spec).items() if v is not None}
    unset = sorted(k for k, v in settings.items() if v == MISSING)
    if unset:
        raise missing_values([f"backend.{k}" for k in unset])
    kind = settings.pop("kind", "vllm")
    if kind not in BACKEND_KINDS:
        raise UnknownNameError("backend kind", str(kind), BACKEND_KINDS)
    return kind, settings


def _vllm_config(settings: dict[str, Any]) -> Any:
    from ponder.backends.vllm_engine import VllmConfig

    try:
        return VllmConfig(**settings)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("backend", exc)) from None
