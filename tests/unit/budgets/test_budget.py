import pydantic
import pytest

from ponder.budgets import Budget
from ponder.budgets.budget import LIMITS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("generated_tokens", -5),
        ("generated_tokens", 0),
        ("total_tokens", -1),
        ("model_calls", 0),
        ("verifier_calls", -3),
        ("seconds", 0.0),
        ("seconds", -0.5),
    ],
    ids=lambda v: str(v),
)
def test_limits_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError, match=f"{field} must be > 0, got {value}"):
        Budget(**{field: value})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="generated_token"):
        Budget(generated_token=10)  # type: ignore[call-arg]


def test_seconds_must_be_finite() -> None:
    with pytest.raises(pydantic.ValidationError, match="seconds"):
        Budget(seconds=float("nan"))


def test_fields_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Budget(100)  # type: ignore[misc]
    budget = Budget(model_calls=3)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        budget.model_calls = 4  # type: ignore[misc]


def test_every_limit_is_a_documented_field() -> None:
    assert tuple(Budget.model_fields) == LIMITS
    assert all(field.description for field in Budget.model_fields.values())


def test_unlimited() -> None:
    assert Budget.unlimited() == Budget()


@pytest.mark.parametrize(
    ("budget", "text"),
    [
        (Budget(), "Budget()"),
        (Budget(generated_tokens=4000), "Budget(generated_tokens=4000)"),
        (Budget(model_calls=8, seconds=30), "Budget(model_calls=8, seconds=30.0)"),
    ],
    ids=["unlimited", "one-limit", "two-limits"],
)
def test_repr_shows_only_set_limits(budget: Budget, text: str) -> None:
    assert repr(budget) == text
