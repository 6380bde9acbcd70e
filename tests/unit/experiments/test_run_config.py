"""The run app's config tree: every strategy config composes under run.yaml and builds, every
dataset config validates, and run folders get names from the overrides."""

from __future__ import annotations

import pytest

from ponder.config import compose, config_dir
from ponder.experiments.app import run_name
from ponder.experiments.datasets import dataset_config
from ponder.strategies import strategies

STRATEGY_FILES = sorted(p.stem for p in (config_dir() / "strategy").glob("*.yaml"))
DATASET_FILES = sorted(p.stem for p in (config_dir() / "dataset").glob("*.yaml"))


def test_every_registered_strategy_has_a_config() -> None:
    assert set(strategies.names) <= set(STRATEGY_FILES)


@pytest.mark.parametrize("name", STRATEGY_FILES)
def test_every_strategy_config_builds_inside_a_run(name: str) -> None:
    config = compose([f"strategy={name}", "dataset.size=3"], config_name="run")
    assert strategies.build(config["strategy"]).name == config["strategy"]["name"]
    assert config["dataset"]["size"] == 3 and config["concurrency"] == 16


@pytest.mark.parametrize("name", DATASET_FILES)
def test_every_dataset_config_validates(name: str) -> None:
    overrides = [f"dataset={name}"] + (["dataset.path=x.jsonl"] if name in ("file", "hub") else [])
    source = dataset_config(compose(overrides, config_name="run")["dataset"])
    assert source.label


def test_the_gsm8k_config_reads_the_reference_after_the_marker() -> None:
    source = dataset_config(compose(["dataset=gsm8k"], config_name="run")["dataset"])
    assert (source.path, source.subset, source.split, source.answer_pattern) == (
        "openai/gsm8k", "main", "test", r"####\s*(.+)$"
    )


@pytest.mark.parametrize(
    ("overrides", "folder"),
    [("", "defaults"), ("strategy.n=4", "strategy.n=4"), ("dataset.path=/data/x.jsonl", "dataset.path=_data_x.jsonl")],
    ids=["none", "plain", "slashes"],
)
def test_run_folders_are_named_by_the_overrides(overrides: str, folder: str) -> None:
    assert run_name(overrides) == folder


def test_long_folder_names_are_shortened_but_stay_distinct() -> None:
    one, two = run_name("strategy.n=4," + "x" * 300), run_name("strategy.n=4," + "x" * 299)
    assert len(one) <= 120 and one != two
