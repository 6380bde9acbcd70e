"""A model cut after its first L layers, for features read from a middle layer: the layers
kept, the config, the files copied beside them, the cache, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ponder.errors import BadRequestError
from ponder.models.truncated import model_layers, truncated_model


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    weights = {"model.embed_tokens.weight": torch.zeros(8, 2), "model.norm.weight": torch.ones(2)}
    for layer in range(4):
        weights[f"model.layers.{layer}.mlp.weight"] = torch.full((2, 2), float(layer))
    save_file(weights, str(folder / "model.safetensors"))
    config = {"num_hidden_layers": 4, "hidden_size": 2, "layer_types": ["full"] * 4}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    return folder


def test_the_copy_keeps_the_first_layers_and_everything_outside_them(model: Path) -> None:
    cut = Path(truncated_model(str(model), 2))
    kept = load_file(str(cut / "model.safetensors"))
    assert sorted(kept) == [
        "model.embed_tokens.weight", "model.layers.0.mlp.weight", "model.layers.1.mlp.weight",
        "model.norm.weight",
    ]
    assert kept["model.layers.1.mlp.weight"][0, 0].item() == 1.0  # the same weights
    config = json.loads((cut / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["layer_types"] == ["full", "full"]
    assert model_layers(str(cut)) == 2
    assert (cut / "tokenizer.json").is_file()


def test_the_copy_is_made_once_and_all_layers_need_none(model: Path) -> None:
    first = Path(truncated_model(str(model), 3))
    (first / "model.safetensors").write_bytes(b"reused")  # a second call must not rewrite it
    assert Path(truncated_model(str(model), 3)) == first
    assert (first / "model.safetensors").read_bytes() == b"reused"
    assert truncated_model(str(model), 4) == str(model)


@pytest.mark.parametrize("layers", [0, 5])
def test_a_layer_outside_the_model_is_refused(model: Path, layers: int) -> None:
    with pytest.raises(BadRequestError, match=r"layer must be in \[1, 4\]"):
        truncated_model(str(model), layers)


def test_a_name_that_is_not_a_local_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="needs a local model folder"):
        truncated_model("HuggingFaceTB/SmolLM2-135M-Instruct", 2)
