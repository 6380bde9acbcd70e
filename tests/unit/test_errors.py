"""Validation errors read once and plainly: the field, the reason, the value given once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ponder.api import build_budget
from ponder.config import compose
from ponder.errors import BadRequestError, describe_validation_error
from ponder.experiments import app
from ponder.experiments.metrics import Summary
from ponder.strategies import strategies


class Knobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1)
    name: str = "x"
    window: int = 8

    @field_validator("window")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"window must be even, got {value}")
        return value


def described(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Knobs(**fields)
    return describe_validation_error("knobs", caught.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": -5}, "knobs.n: Input should be greater than or equal to 1 (got -5)"),
        ({"window": 3}, "knobs.window: must be even, got 3"),
        ({"colour": "red"}, "knobs.colour: unknown parameter"),
        ({"name": ["x" * 100]}, "knobs.name: Input should be a valid string (got ['" + "x" * 55 + "...)"),
        ({"n": 0, "window": 5}, "knobs.n: Input should be greater than or equal to 1 (got 0); "
                                "knobs.window: must be even, got 5"),
    ],
    ids=["range", "own-validator", "unknown", "long-value", "two-problems"],
)
def test_each_problem_is_said_once(fields: dict[str, Any], message: str) -> None:
    assert described(**fields) == message


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: strategies.build({"name": "self_consistency", "n": -5}),
         "strategy.n: Input should be greater than or equal to 1 (got -5)"),
        (lambda: build_budget({"generated_tokens": -5}), "budget.generated_tokens: must be > 0, got -5"),
        (lambda: strategies.build({"name": "short_mk", "k": 2, "m": 3}),
         "strategy: m must be <= k, got m=3, k=2"),
        (lambda: compose(["backend=openai"]), "backend.model: missing; give it (backend.model=...)"),
        (lambda: compose(["backend=openai", "backend.model=m", "dataset=file"], config_name="run"),
         "dataset.path: missing; give it (dataset.path=...)"),
    ],
    ids=["strategy-range", "budget-own-validator", "whole-model", "openai-without-model",
         "run-without-dataset-path"],
)
def test_ponders_own_errors_read_plainly(build: Any, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        build()
    assert str(caught.value) == message
    assert "Value error" not in message and "???" not in message


def test_the_run_summary_says_what_its_accuracy_counts(caplog: pytest.LogCaptureFixture) -> None:
    summary = Summary(
        problems=10, graded=8, correct=2, unknown=2, errors=0, accuracy=0.25,
        pass_at_k={1: 0.25}, majority_at_k={1: 0.25}, weighted_at_k=None, candidates_per_problem=1,
        tokens_per_problem={"generated_tokens": 120.0}, wall_seconds_per_problem=1.0,
        prefix_cache_hit_rate=0.5, budget_exhausted=0,
    )
    with caplog.at_level(logging.INFO, logger=app.log.name):
        app._log_summary(summary)
    assert caplog.messages[0].startswith(
        "accuracy 0.250 (2 of 8 problems with a reference answer correct), 120 generated tokens"
    )
