"""The algorithms users pick. Importing this package registers every built-in strategy."""

from ponder.strategies import best_of_n, first_finish, self_consistency, short_mk
from ponder.strategies.base import Context, SamplingConfig, Strategy, strategies
from ponder.strategies.best_of_n import BestOfN
from ponder.strategies.first_finish import FirstFinish
from ponder.strategies.self_consistency import SelfConsistency
from ponder.strategies.short_mk import ShortMK

__all__ = [
    "BestOfN",
    "Context",
    "FirstFinish",
    "SamplingConfig",
    "SelfConsistency",
    "ShortMK",
    "Strategy",
    "best_of_n",
    "first_finish",
    "self_consistency",
    "short_mk",
    "strategies",
]
