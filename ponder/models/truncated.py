"""A model cut after its first L decoder layers, for features read from a middle layer.

vLLM's pooling runner returns the hidden state after the model's last layer. A verifier
reading layer L of a model therefore runs a copy of it with only the first L layers (and the
model's final norm, which vLLM applies after whatever layer is last): the same weights, the
rest dropped. ``hf_overrides={"num_hidden_layers": L}`` is not enough: vLLM's weight loader
refuses the checkpoint's extra layers. The copy is written once to the cache directory and
reused; a marker file written last makes an interrupted copy redo.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path

from ponder.errors import BadRequestError
from ponder.models.embedded import cache_root

log = logging.getLogger(__name__)

_DONE_MARKER = ".ponder-truncated"
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
"""The decoder-layer index in a weight's name (``model.layers.12.mlp...``)."""


def model_layers(model_path: str) -> int:
    """How many decoder layers the model folder's config declares."""
    config = _config(Path(model_path))
    layers = config.get("num_hidden_layers")
    if not isinstance(layers, int):
        raise BadRequestError(f"model {model_path!r} has no num_hidden_layers in its config.json")
    return layers


def truncated_model(model_path: str, layers: int) -> str:
    """A folder holding the model at ``model_path`` (a local folder) with only its first
    ``layers`` decoder layers; the model itself when that is all of them."""
    source = Path(model_path)
    if not (source / "config.json").is_file():
        raise BadRequestError(
            f"layer needs a local model folder (with config.json) to cut; {model_path!r} is not one"
        )
    total = model_layers(model_path)
    if not 1 <= layers <= total:
        raise BadRequestError(f"layer must be in [1, {total}] for model {model_path!r}, got {layers}")
    if layers == total:
        return model_path
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:10]
    target = cache_root() / "truncated" / f"{source.name}-{digest}-layers{layers}"
    if (target / _DONE_MARKER).exists():
        return str(target)
    log.info("writing %s cut after %d of its %d layers to %s (once)", source, layers, total, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _write_truncated(source, staging, layers)
        (staging / _DONE_MARKER).write_text(str(source))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def _config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadRequestError(f"cannot read {folder / 'config.json'}: {exc}") from None


def _write_truncated(source: Path, out_dir: Path, layers: int) -> None:
    from safetensors.torch import load_file, save_file

    weights = sorted(source.glob("*.safetensors"))
    if not weights:
        raise BadRequestError(f"model folder {source} has no .safetensors weights to cut")
    kept = {}
    for file in weights:
        for name, tensor in load_file(str(file)).items():
            layer = _LAYER.search(name)
            if layer is None or int(layer.group(1)) < layers:
                kept[name] = tensor
    save_file(kept, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = _config(source)
    config["num_hidden_layers"] = layers
    for key in ("layer_types", "sliding_window_pattern_layers"):  # per-layer lists, if any
        if isinstance(config.get(key), list):
            config[key] = config[key][:layers]
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    for file in source.iterdir():  # tokenizer, chat template, generation config
        if file.is_file() and file.suffix != ".safetensors" and file.name not in (
            "config.json", "model.safetensors.index.json"
        ) and not file.name.startswith("."):
            shutil.copy2(file, out_dir / file.name)
