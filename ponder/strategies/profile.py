"""What strategy 'auto' chooses from: a profile of strategies measured per difficulty.

A profile is a list of points, one per strategy config: its mean generated tokens per problem
and its accuracy on easy, medium and hard problems of the split it was measured on. It also
says how to tell the difficulty of a new question, which the policy must do before it has an
answer: a cheap probe (a few short samples, optionally scored by a verifier) gives a feature
(the agreement among the probe answers, or their mean verifier score) and ``thresholds`` map
the feature to a bucket. ``ponder tune`` measures the points and fits the thresholds to the
model's own pass rate (Snell et al.'s oracle difficulty); it records the model the profile was
made for, since another model's accuracies say nothing about this one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ponder.config import config_dir
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError
from ponder.verifiers.equivalence import group_answers

BUCKETS = ("easy", "medium", "hard")
Predictor = Literal["agreement", "score"]


class Thresholds(BaseModel):
    """The difficulty feature (higher: easier) to a bucket."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    easy_at: float = Field(0.75, ge=0, le=1, description="Feature at or above: easy.")
    hard_below: float = Field(0.5, ge=0, le=1, description="Feature below: hard.")

    def bucket(self, feature: float) -> str:
        if feature >= self.easy_at:
            return "easy"
        return "hard" if feature < self.hard_below else "medium"


class ProfilePoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: dict[str, Any] = Field(description="A strategy config with its name.")
    generated_tokens: float = Field(ge=0, description="Mean generated tokens per problem.")
    accuracy: dict[str, float] = Field(description="Accuracy per difficulty bucket.")

    @field_validator("accuracy", mode="before")
    @classmethod
    def _every_bucket(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            return dict.fromkeys(BUCKETS, value)  # one number: the same in every bucket
        if isinstance(value, dict) and set(value) != set(BUCKETS):
            raise ValueError(f"accuracy needs exactly the buckets {list(BUCKETS)}, got {sorted(value)}")
        return value


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field("", description="How the profile was made.")
    model: str | None = Field(
        None, description="The backend model it was measured on (None: not recorded, not checked)."
    )
    probe_samples: int = Field(4, ge=2, le=16, description="Probe answers difficulty is read from.")
    probe_tokens: int = Field(128, ge=8, description="Most tokens per probe answer.")
    probe_format: Literal["words", "program"] = Field(
        "words", description="How the probe's chains reason: 'words', or 'program' (Python "
        "programs run in the sandbox); a chosen self-consistency of the same format counts "
        "them among its chains."
    )
    probe_verifier: dict[str, Any] | None = Field(
        None, description="A verifier config that scores the probe answers (needed by predictor 'score')."
    )
    predictor: Predictor = Field(
        "agreement", description="The difficulty feature: 'agreement' of the probe answers or "
        "their mean verifier 'score'."
    )
    predictor_fit: dict[str, float] = Field(
        default_factory=dict,
        description="Per feature, the share of tuning problems whose bucket it predicted right.",
    )
    thresholds: Thresholds = Thresholds()
    token_price: float = Field(
        0.0, ge=0, description="Accuracy a point must gain for every 1000 more generated tokens "
        "to be chosen over a cheaper one (0: the most accurate whatever it costs)."
    )
    points: tuple[ProfilePoint, ...] = Field(min_length=1)

    @field_validator("probe_verifier")
    @classmethod
    def _named(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "name" not in value:
            raise ValueError("needs a 'name' (a verifier config)")
        return value

    @model_validator(mode="after")
    def _score_needs_a_verifier(self) -> Profile:
        if self.predictor == "score" and self.probe_verifier is None:
            raise ValueError(
                "predictor: 'score' reads the probe answers' verifier scores; set probe_verifier "
                "(a verifier config) or use predictor 'agreement'"
            )
        return self


def default_profile_path() -> Path:
    return config_dir() / "profiles" / "embedded.yaml"


def load_profile(path: Path | None = None, model: str | None = None, force: bool = False) -> Profile:
    """The profile at ``path`` (None: the shipped one), refused for ``model`` when it was made
    for another (see ``check_model``)."""
    path = path or default_profile_path()
    try:
        data = yaml.safe_load(path.read_text())
        profile = Profile.model_validate(data)
    except OSError as exc:
        raise BadRequestError(f"profiles: cannot read {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(f"profiles ({path})", exc)) from None
    check_model(profile, path, model, force)
    return profile


def check_model(profile: Profile, path: Path, model: str | None, force: bool = False) -> None:
    """Refuse a profile made for another model than ``model``: its accuracies are another
    model's, so the choices would be too. Unknown on either side (None), or ``force``: no check."""
    if force or profile.model is None or model is None or profile.model == model:
        return
    raise BadRequestError(
        f"profiles ({path}): made for model {profile.model!r}, not {model!r}; make one for "
        f"{model!r} with `ponder tune`, or set force_profile (serve: --force-profile) to use it "
        "anyway"
    )


def save_profile(profile: Profile, path: Path, header: str = "") -> None:
    """Write ``profile`` as YAML that ``load_profile`` reads back; ``header`` becomes comments."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    data = profile.model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comments + yaml.safe_dump(data, sort_keys=False))


def agreement(answers: Sequence[str | None]) -> float:
    """Share of ``answers`` equivalent to the most common one ("42" and "42.0" agree); a
    missing answer agrees with nothing. 0 when none answered."""
    groups = group_answers(answers)
    return max(len(g) for g in groups) / len(answers) if groups else 0.0
