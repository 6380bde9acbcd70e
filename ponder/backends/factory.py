"""Build a backend from what a user or a config names: a model, a config mapping, or an object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ponder.backends.base import Backend
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError, UnknownNameError

BACKEND_KINDS = ("vllm", "openai")


async def build_backend(spec: Backend | Mapping[str, Any] | str) -> Backend:
    """``spec`` is a Backend (used as is), a model name for the in-process engine
    ('embedded', a local folder, a hub name), or a config mapping with ``kind``."""
    if isinstance(spec, Backend):
        return spec
    if isinstance(spec, str):
        spec = {"kind": "vllm", "model": spec}
    settings = {k: v for k, v in dict(spec).items() if v is not None}
    kind = settings.pop("kind", "vllm")
    if kind == "vllm":
        from ponder.backends.vllm_engine import VllmBackend, VllmConfig

        try:
            config = VllmConfig(**settings)
        except ValidationError as exc:
            raise BadRequestError(describe_validation_error("backend", exc)) from None
        return await VllmBackend.shared(config)
    if kind == "openai":
        from ponder.backends.openai_backend import OpenAIBackend

        try:
            return OpenAIBackend(**settings)
        except TypeError as exc:
            raise BadRequestError(f"backend: {exc}") from None
    raise UnknownNameError("backend kind", str(kind), BACKEND_KINDS)
