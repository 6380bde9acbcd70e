"""The algorithms users pick. Importing this package registers every built-in strategy."""

from ponder.core.sampling import SamplingConfig
from ponder.runtime import Run
from ponder.strategies import (
    adaptive,
    astar,
    auto,
    beam,
    best_of_n,
    budget_forcing,
    cot_trim,
    deepconf,
    dvts,
    first_finish,
    mcts,
    particle_filter,
    particle_gibbs,
    self_consistency,
    short_mk,
    spec_reason,
    tot_dfs,
)
from ponder.strategies.adaptive import AdaptiveSampling
from ponder.strategies.astar import AStar
from ponder.strategies.auto import Auto
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.beam import BeamSearch
from ponder.strategies.best_of_n import BestOfN
from ponder.strategies.budget_forcing import BudgetForcing
from ponder.strategies.cot_trim import CoTTrim
from ponder.strategies.deepconf import DeepConf
from ponder.strategies.dvts import DiverseVerifierTreeSearch
from ponder.strategies.first_finish import FirstFinish
from ponder.strategies.mcts import MCTS
from ponder.strategies.particle_filter import ParticleFilter
from ponder.strategies.particle_gibbs import ParticleGibbs
from ponder.strategies.self_consistency import SelfConsistency
from ponder.strategies.short_mk import ShortMK
from ponder.strategies.spec_reason import SpecReason
from ponder.strategies.tot_dfs import TreeOfThoughtsDFS

__all__ = [
    "AStar",
    "AdaptiveSampling",
    "Auto",
    "BeamSearch",
    "BestOfN",
    "BudgetForcing",
    "CoTTrim",
    "DeepConf",
    "Run",
    "DiverseVerifierTreeSearch",
    "FirstFinish",
    "MCTS",
    "ParticleFilter",
    "ParticleGibbs",
    "SamplingConfig",
    "SelfConsistency",
    "ShortMK",
    "SpecReason",
    "Strategy",
    "TreeOfThoughtsDFS",
    "adaptive",
    "astar",
    "auto",
    "beam",
    "best_of_n",
    "budget_forcing",
    "cot_trim",
    "deepconf",
    "dvts",
    "first_finish",
    "mcts",
    "particle_filter",
    "particle_gibbs",
    "self_consistency",
    "short_mk",
    "spec_reason",
    "strategies",
    "tot_dfs",
]
