"""The algorithms users pick. Importing this package registers every built-in strategy."""

from ponder.strategies import astar
from ponder.strategies import beam, dvts
from ponder.strategies import best_of_n, first_finish, self_consistency, short_mk, spec_reason
from ponder.strategies import budget_forcing
from ponder.strategies import cot_trim
from ponder.strategies import particle_filter, particle_gibbs
from ponder.strategies.base import Context, SamplingConfig, Strategy, strategies
from ponder.strategies.astar import AStar
from ponder.strategies.beam import BeamSearch
from ponder.strategies.best_of_n import BestOfN
from ponder.strategies.budget_forcing import BudgetForcing
from ponder.strategies.cot_trim import CoTTrim
from ponder.strategies.dvts import DiverseVerifierTreeSearch
from ponder.strategies.first_finish import FirstFinish
from ponder.strategies.particle_filter import ParticleFilter
from ponder.strategies.particle_gibbs import ParticleGibbs
from ponder.strategies.self_consistency import SelfConsistency
from ponder.strategies.short_mk import ShortMK
from ponder.strategies.spec_reason import SpecReason

__all__ = [
    "AStar",
    "BeamSearch",
    "BestOfN",
    "BudgetForcing",
    "CoTTrim",
    "Context",
    "DiverseVerifierTreeSearch",
    "FirstFinish",
    "ParticleFilter",
    "ParticleGibbs",
    "SamplingConfig",
    "SelfConsistency",
    "ShortMK",
    "SpecReason",
    "Strategy",
    "astar",
    "beam",
    "best_of_n",
    "budget_forcing",
    "cot_trim",
    "dvts",
    "first_finish",
    "particle_filter",
    "particle_gibbs",
    "self_consistency",
    "short_mk",
    "spec_reason",
    "strategies",
]
