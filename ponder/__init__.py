"""ponder: test-time compute for language models, under an explicit budget, on vLLM."""

from ponder.api import asolve, shutdown, solve
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.usage import Usage
from ponder.errors import (
    BackendDeadError,
    BackendError,
    BadRequestError,
    BudgetExhaustedError,
    PonderError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendDeadError",
    "BackendError",
    "BadRequestError",
    "Budget",
    "BudgetExhaustedError",
    "Candidate",
    "Ledger",
    "PonderError",
    "Problem",
    "Result",
    "Usage",
    "__version__",
    "asolve",
    "shutdown",
    "solve",
]
