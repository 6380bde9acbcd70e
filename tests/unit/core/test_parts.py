"""Graph parts declare their kind; the graph layer reads the declarations, not class names."""

from __future__ import annotations

from typing import ClassVar

from ponder.core.parts import Part, part_bases
from ponder.core.registry import Registry, registry_for
from ponder.graph.parts import KINDS, REGISTRIES, label_of
from ponder.strategies import Strategy, strategies
from ponder.strategies.cot_trim import TrimSettings
from ponder.strategies.step_generators import SpeculativeSteps, StepGenerator, step_generators
from ponder.verifiers import Verifier, verifiers


def test_every_kind_is_found_by_its_declaration() -> None:
    assert KINDS == {
        Strategy: "strategy",
        Verifier: "verifier",
        StepGenerator: "step generator",
        TrimSettings: "chain trimming",
    }
    assert REGISTRIES == {
        Strategy: strategies, Verifier: verifiers, StepGenerator: step_generators
    }


def test_a_new_kind_is_a_part_without_touching_the_graph_layer() -> None:
    class Critic(Part):
        part_kind: ClassVar[str | None] = "critic"

    class Harsh(Critic):
        pass

    critics: Registry[Critic] = Registry("critic", Critic)
    critics.register("harsh")(Harsh)
    assert Critic in part_bases() and Harsh not in part_bases()
    assert registry_for(Critic) is critics


def test_labels_come_from_the_registry_else_the_declared_label() -> None:
    assert label_of(SpeculativeSteps()) == "speculative"
    assert label_of(TrimSettings()) == "trim"
