"""The problems of a run: generated arithmetic, the packaged word problems, a local
JSONL/JSON/Parquet/CSV file or a Hugging Face hub dataset.

Files and hub datasets are read through Hugging Face ``datasets`` and mapped to (question,
answer, id) by ``fields``. Everything is checked here, before any model loads: a missing
file, a column the mapping names but the data lacks, a record without a question. A record
without a reference answer is kept and graded ``unknown`` (not wrong), with a warning.
"""

from __future__ import annotations

import abc
import logging
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ponder.core.problem import Problem
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError, UnknownNameError
from ponder.experiments.arithmetic import MAX_DIFFICULTY, arithmetic_problems

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).with_name("data")
_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
"""File suffix -> the ``datasets`` builder that reads it."""


class Fields(BaseModel):
    """Which column holds what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field("question", description="The column with the question.")
    answer: str | None = Field(
        "answer", description="The column with the reference answer; null: none (all unknown)."
    )
    id: str | None = Field(None, description="A column of unique ids; null: the row number.")


class _Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(None, description="A label for summaries and reports.")


class ArithmeticSource(_Source):
    """The generated arithmetic set (``ponder.experiments.arithmetic``)."""

    source: Literal["arithmetic"]
    size: int = Field(100, ge=1, le=1_000_000, description="How many problems.")
    difficulty: int = Field(1, ge=1, le=MAX_DIFFICULTY, description="Operations per problem.")
    seed: int = Field(0, description="Which problems: the same seed, the same set.")

    @property
    def label(self) -> str:
        return self.name or f"arithmetic-d{self.difficulty}"


class _Table(_Source, abc.ABC):
    """Records read through Hugging Face ``datasets``."""

    fields: Fields = Fields()
    answer_pattern: str | None = Field(
        None,
        description="A regex whose first group is the reference inside the answer column "
        "(GSM8K: '####\\s*(.+)$'); a record it does not match has no reference.",
    )
    limit: int | None = Field(None, ge=1, description="Use the first N problems (after shuffle).")
    shuffle: bool = Field(False, description="Shuffle (seeded) before taking the first N.")
    seed: int = Field(0, description="The shuffle's seed.")

    @field_validator("answer_pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                groups = re.compile(pattern).groups
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
            if groups < 1:
                raise ValueError("needs a group, (...), around the answer")
        return pattern

    @abc.abstractmethod
    def where(self) -> str:
        """How errors name this data."""

    @abc.abstractmethod
    def read(self) -> Any:
        """The records as a ``datasets.Dataset``."""


class FileSource(_Table):
    """A local JSONL, JSON, Parquet or CSV file."""

    source: Literal["file"]
    path: str = Field(description="The file; relative paths from the working directory.")

    @property
    def label(self) -> str:
        return self.name or Path(self.path).stem

    def file(self) -> Path:
        return Path(self.path).expanduser()

    def where(self) -> str:
        return str(self.file())

    def read(self) -> Any:
        path = self.file()
        if not path.is_file():
            raise BadRequestError(f"dataset.path: no file at {path}")
        builder = _BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise BadRequestError(
                f"dataset.path: cannot read {path.suffix or 'a file without a suffix'}; "
                f"use one of {', '.join(_BUILDERS)}"
            )
        failure = f"could not read {path} as {builder}"
        return _load(failure, builder, data_files=str(path), split="train")


class PackagedSource(FileSource):
    """A file shipped in ``ponder/experiments/data`` (``path`` is relative to it)."""

    source: Literal["packaged"]  # type: ignore[assignment]

    def file(self) -> Path:
        return DATA_DIR / self.path


class HubSource(_Table):
    """A dataset on the Hugging Face hub (or in the local ``datasets`` cache)."""

    source: Literal["hub"]
    path: str = Field(description="The hub name, e.g. openai/gsm8k.")
    subset: str | None = Field(None, description="The dataset's config name, e.g. main.")
    split: str = Field("test", description="Which split.")
    revision: str | None = Field(None, description="A commit or tag, for reproducible runs.")

    @property
    def label(self) -> str:
        return self.name or self.path.rsplit("/", 1)[-1]

    def where(self) -> str:
        return f"{self.path} ({self.split})"

    def read(self) -> Any:
        return _load(
            f"could not load {self.path!r} (split {self.split!r}) from the Hugging Face hub",
            self.path, self.subset, split=self.split, revision=self.revision,
        )


DatasetConfig = ArithmeticSource | FileSource | PackagedSource | HubSource
_SOURCES: dict[str, type[DatasetConfig]] = {
    "arithmetic": ArithmeticSource,
    "file": FileSource,
    "packaged": PackagedSource,
    "hub": HubSource,
}


def dataset_config(config: Mapping[str, Any] | DatasetConfig) -> DatasetConfig:
    """The validated dataset config, chosen by its ``source`` key; errors name the field."""
    if isinstance(config, BaseModel):
        return config  # type: ignore[return-value]
    kind = config.get("source")
    if kind not in _SOURCES:
        raise UnknownNameError("dataset source", str(kind), list(_SOURCES))
    try:
        return _SOURCES[kind].model_validate(config)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("dataset", exc)) from None


def load_problems(config: Mapping[str, Any] | DatasetConfig) -> list[Problem]:
    """The run's problems, each with a unique ``id``, in dataset order."""
    source = dataset_config(config)
    if isinstance(source, ArithmeticSource):
        generated = arithmetic_problems(source.size, difficulty=source.difficulty, seed=source.seed)
        return [Problem(prompt=p.question, reference=str(p.answer), id=p.id) for p in generated]
    problems = _map(source.read(), source)
    if source.shuffle:
        random.Random(source.seed).shuffle(problems)
    return problems[: source.limit]


def _load(failure: str, *args: Any, **kwargs: Any) -> Any:
    """``datasets.load_dataset`` with its progress bars off and its failures as bad input."""
    import datasets

    bars_were_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # the library fails with many types; all mean "cannot read this"
        raise BadRequestError(f"dataset: {failure}: {exc}") from None
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


def _map(table: Any, source: _Table) -> list[Problem]:
    columns = list(table.column_names)
    for key in ("question", "answer", "id"):
        column = getattr(source.fields, key)
        if column is not None and column not in columns:
            raise BadRequestError(
                f"dataset.fields.{key}: no column {column!r} in {source.where()}; "
                f"its columns are: {', '.join(columns)}"
            )
    if not len(table):
        raise BadRequestError(f"dataset: {source.where()} has no records")
    problems = [_problem(index, row, source) for index, row in enumerate(table)]
    _check_ids(problems, source)
    _check_references(problems, source)
    return problems


def _problem(index: int, row: dict[str, Any], source: _Table) -> Problem:
    fields = source.fields
    question = row[fields.question]
    if not isinstance(question, str) or not question.strip():
        raise BadRequestError(
            f"dataset record {index} of {source.where()}: no question in column {fields.question!r}"
        )
    reference = None if fields.answer is None else _text(row[fields.answer])
    if reference is not None and source.answer_pattern is not None:
        match = re.search(source.answer_pattern, reference, re.DOTALL | re.MULTILINE)
        reference = _text(match.group(1)) if match else None
    problem_id = str(index) if fields.id is None else _text(row[fields.id])
    if problem_id is None:
        raise BadRequestError(
            f"dataset record {index} of {source.where()}: no id in column {fields.id!r}"
        )
    return Problem(prompt=question, reference=reference, id=problem_id)


def _text(value: Any) -> str | None:
    """A cell as text; None for an empty one. A whole number in a float column (the type a
    column of integers gets when a value is missing or fractional) is written as an integer."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _check_ids(problems: list[Problem], source: _Table) -> None:
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise BadRequestError(
                f"dataset.fields.id: id {problem.id!r} appears twice in {source.where()}; "
                "ids must be unique (runs resume by id)"
            )
        seen.add(problem.id)  # type: ignore[arg-type]


def _check_references(problems: list[Problem], source: _Table) -> None:
    missing = sum(problem.reference is None for problem in problems)
    if source.fields.answer is None or not missing:
        return
    if source.answer_pattern is not None and missing == len(problems):
        raise BadRequestError(
            f"dataset.answer_pattern: {source.answer_pattern!r} matches none of the "
            f"{len(problems)} answers in {source.where()}"
        )
    log.warning(
        "%d of %d records in %s have no reference answer; they are graded unknown",
        missing, len(problems), source.where(),
    )
