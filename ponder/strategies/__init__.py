"""The algorithms users pick. Importing this package registers every built-in strategy."""

from ponder.strategies import best_of_n, self_consistency
from ponder.strategies.base import Context, SamplingConfig, Strategy, strategies
from ponder.strategies.best_of_n import BestOfN
from ponder.strategies.self_consistency import SelfConsistency

__all__ = [
    "BestOfN",
    "Context",
    "SamplingConfig",
    "SelfConsistency",
    "Strategy",
    "best_of_n",
    "self_consistency",
    "strategies",
]
