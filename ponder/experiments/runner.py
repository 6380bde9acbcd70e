"""Solve a run's problems concurrently on one backend, writing a record as each finishes.

Up to ``concurrency`` problems are in flight at once, all on the same event loop and backend,
so the engine sees their requests together and batches them. Each problem gets its own seed,
drawn from the run's seed and the problem's id: its result does not depend on which
problems ran beside it, in what order, or whether the run was resumed.

A problem the strategy rejects as bad input gets a record with the error (it would fail the
same way again); one the backend failed on gets none, so the next run retries it; a dead
engine stops the run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from ponder.api import asolve
from ponder.backends.base import Backend
from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.errors import BackendDeadError, BackendError, BadRequestError
from ponder.experiments.records import ProblemRecord, RecordLog
from ponder.strategies import Strategy
from ponder.verifiers.grading import Grade

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Counts for the progress bar and the end of a run."""

    solved: int = 0
    """Problems finished by this invocation."""
    correct: int = 0
    graded: int = 0
    """Of all records so far (earlier invocations too), the correct and the graded ones."""
    failed: list[str] = field(default_factory=list)
    """Ids of problems the backend failed on (no record: the next run retries them)."""

    def add(self, record: ProblemRecord) -> None:
        self.graded += record.grade != Grade.UNKNOWN
        self.correct += record.grade == Grade.CORRECT


def problem_seed(seed: int, problem_id: str) -> int:
    """The problem's own seed: fixed by the run's seed and the problem, nothing else."""
    return random.Random(f"{seed}:{problem_id}").randrange(2**63)


async def solve_problems(
    problems: Sequence[tuple[int, Problem]],
    *,
    strategy: Strategy,
    backend: Backend,
    budget: Budget,
    records: RecordLog,
    done: Sequence[ProblemRecord] = (),
    seed: int = 0,
    concurrency: int = 16,
    bar: tqdm | None = None,
) -> Progress:
    """Solve ``(dataset index, problem)`` pairs, appending one record per finished problem.
    ``done`` are the records of earlier invocations (for the running accuracy)."""
    if concurrency < 1:
        raise BadRequestError(f"concurrency must be >= 1, got {concurrency}")
    progress = Progress()
    for record in done:
        progress.add(record)
    slots = asyncio.Semaphore(concurrency)

    async def solve_one(index: int, problem: Problem) -> None:
        async with slots:
            started = time.perf_counter()
            try:
                result = await asolve(
                    problem, strategy=strategy, backend=backend, budget=budget,
                    seed=problem_seed(seed, problem.id or str(index)),
                )
                record = ProblemRecord.from_result(index, problem, result)
            except BadRequestError as exc:
                wall = time.perf_counter() - started
                record = ProblemRecord.failed(index, problem, str(exc), wall)
                log.error("problem %s: %s", record.id, exc)
            except BackendDeadError:
                raise
            except BackendError as exc:
                progress.failed.append(problem.id or str(index))
                log.error("problem %s failed (a later run retries it): %s", problem.id, exc)
                return
        records.append(record)
        progress.solved += 1
        progress.add(record)
        if bar is not None:
            bar.update()
            if progress.graded:
                bar.set_postfix(accuracy=f"{progress.correct / progress.graded:.3f}", refresh=False)

    try:
        async with asyncio.TaskGroup() as group:  # a dead engine cancels every other problem
            for index, problem in problems:
                group.create_task(solve_one(index, problem))
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]  # the others were cancelled because of it
        raise first from first.__cause__
    return progress
