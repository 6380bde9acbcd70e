"""One record per problem of a run, and the JSONL file that holds them.

Records are appended and flushed as each problem finishes, so an interrupted run loses only
the problems in flight, and a restart skips every problem that has a record.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.errors import BadRequestError
from ponder.verifiers.grading import Grade, grade

log = logging.getLogger(__name__)


class CandidateRecord(BaseModel):
    """A candidate the strategy considered, graded against the reference."""

    model_config = ConfigDict(frozen=True)

    index: int
    answer: str | None
    grade: Grade
    score: float | None
    score_reason: str | None = None
    step_scores: tuple[float | None, ...] | None = None
    num_tokens: int
    thinking_tokens: int | None = None
    finish_reason: str | None
    mean_logprob: float | None = None
    text: str
    program: dict[str, str | None] | None = None
    """For a program chain: its code, what it printed and why it gave no answer."""


class ProblemRecord(BaseModel):
    """What a run did on one problem: every candidate, the answer, its grade, honest usage."""

    model_config = ConfigDict(frozen=True)

    id: str
    index: int
    """The problem's position in the dataset."""
    question: str
    reference: str | None
    answer: str | None
    grade: Grade
    """unknown when there is no reference: such a problem is neither right nor wrong."""
    selected_index: int | None
    candidates: tuple[CandidateRecord, ...]
    usage: dict[str, int | float]
    """``Usage.to_dict()`` of the problem's work (tokens, cache hits, calls)."""
    wall_seconds: float
    """From submitting the problem to its result (time shared with the problems beside it)."""
    budget_exhausted: bool
    exhausted_by: str | None
    details: dict[str, Any]
    error: str | None = None
    """Why the strategy failed on this problem (bad input such as a prompt too long)."""

    @classmethod
    def from_result(cls, index: int, problem: Problem, result: Result) -> ProblemRecord:
        reference = problem.reference
        return cls(
            id=problem.id or str(index),
            index=index,
            question=_question(problem),
            reference=reference,
            answer=result.answer,
            grade=grade(result.answer, reference),
            selected_index=result.selected_index,
            candidates=tuple(
                CandidateRecord(**c.to_dict(), grade=grade(c.answer, reference))
                for c in result.candidates
            ),
            usage=result.usage.to_dict(),
            wall_seconds=result.usage.wall_seconds,
            budget_exhausted=result.budget_exhausted,
            exhausted_by=result.exhausted_by,
            details=result.details,
        )

    @classmethod
    def failed(cls, index: int, problem: Problem, error: str, wall_seconds: float) -> ProblemRecord:
        """A problem the strategy could not run: no answer, so wrong where there is a reference."""
        return cls(
            id=problem.id or str(index), index=index, question=_question(problem),
            reference=problem.reference, answer=None, grade=grade(None, problem.reference),
            selected_index=None, candidates=(), usage={}, wall_seconds=wall_seconds,
            budget_exhausted=False, exhausted_by=None, details={}, error=error,
        )


def _question(problem: Problem) -> str:
    if problem.prompt is not None:
        return problem.prompt
    return next(m.content for m in reversed(problem.messages or ()) if m.role == "user")


class RecordLog:
    """``records.jsonl`` of a run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def read(self) -> list[ProblemRecord]:
        """The records written so far. A last line cut off mid-write (the run was killed)
        is dropped from the file; any other unreadable line is an error."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        complete, _, torn = text.rpartition("\n")
        if torn:
            log.warning("dropping a record cut off mid-write at the end of %s", self.path)
            with self.path.open("r+", encoding="utf-8") as file:
                file.truncate(len((complete + "\n").encode("utf-8")) if complete else 0)
        records = []
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                records.append(ProblemRecord.model_validate_json(line))
            except ValidationError as exc:
                raise BadRequestError(
                    f"{self.path}, line {number}: not a problem record ({exc.errors()[0]['msg']}); "
                    "resume=false starts the run over"
                ) from None
        return records

    def append(self, record: ProblemRecord) -> None:
        """Write one record and flush it, so it survives the process."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(record.model_dump_json(fallback=str) + "\n")
        self._file.flush()

    def clear(self) -> None:
        """Start over: remove every record."""
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
