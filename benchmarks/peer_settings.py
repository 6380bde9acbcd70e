"""What every tool in the peer benchmark shares: the sizes, the problems, the sampling and
search settings, and ponder's strategies and verifiers built from them.

Both sides import this module: the harness (ponder's environment) and the its_hub runner
(the peers' environment, where ponder is installed without its engine), so the settings
cannot drift apart. Sampling sends ``temperature`` only, with ``top_p`` 1.0 everywhere:
its_hub's language model has no ``top_p`` parameter, and the server starts with vLLM's own
defaults (not the model folder's), so an unsent value means the same for every tool.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ponder.core.problem import Problem
from ponder.experiments.arithmetic import arithmetic_problems
from ponder.search.expansion import StepConfig
from ponder.strategies import (
    BeamSearch,
    BestOfN,
    ParticleFilter,
    SamplingConfig,
    SelfConsistency,
    Strategy,
)
from ponder.verifiers.base import Verifier, verifiers

STRATEGIES = ("self_consistency", "best_of_n", "beam", "particle_filter")
STEP_DELIMITER = "\n\n"
ANSWER_MARKER = "Answer:"
"""What the default system prompt asks a chain to end with; both tools end a search path at
the step that writes it (its_hub's ``stop_token``, ponder's ``StepConfig.answer_marker``)."""


@dataclass(frozen=True)
class Settings:
    """One benchmark size. Search paths get ``max_steps * step_tokens`` tokens at most, the
    same as a sampled chain's ``max_tokens``, so no tool's chains can run longer."""

    problems: int
    ns: tuple[int, ...]
    max_steps: int
    step_tokens: int
    difficulty: int = 1
    seed: int = 0
    temperature: float = 0.7
    children: int = 4
    """Beam search: children of each kept node per step (ponder's ``beam_width``)."""
    strategies: tuple[str, ...] = field(default=STRATEGIES)

    @property
    def max_tokens(self) -> int:
        return self.max_steps * self.step_tokens

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"max_tokens": self.max_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Settings:
        fields = {k: v for k, v in data.items() if k != "max_tokens"}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


SIZES = {
    "smoke": Settings(problems=1, ns=(2,), max_steps=2, step_tokens=32),
    "full": Settings(problems=16, ns=(4, 8, 16), max_steps=4, step_tokens=64),
}


def problems(settings: Settings) -> list[Problem]:
    """The offline arithmetic set: the first ``settings.problems`` of the seeded generator."""
    return [
        Problem(prompt=p.question, reference=str(p.answer), id=p.id)
        for p in arithmetic_problems(
            settings.problems, difficulty=settings.difficulty, seed=settings.seed
        )
    ]


def beam_children(n: int, settings: Settings) -> int:
    """ponder's ``beam_width`` for ``n`` paths: ``settings.children`` or fewer, dividing ``n``."""
    return max(c for c in range(1, min(settings.children, n) + 1) if n % c == 0)


def step_verifier() -> Verifier:
    """The step scorer of both tools' beam search and particle filtering."""
    return verifiers.build("step_judge")


def outcome_verifier() -> Verifier:
    """The solution scorer of both tools' best-of-N."""
    return verifiers.build("llm_judge")


def sampling(settings: Settings) -> SamplingConfig:
    return SamplingConfig(
        temperature=settings.temperature, top_p=1.0, max_tokens=settings.max_tokens
    )


def ponder_strategy(name: str, n: int, settings: Settings) -> Strategy:
    """ponder's strategy ``name`` at ``n``, configured as its_hub's counterpart runs: best-of-N
    and beam search take the highest score, particle filtering resamples multinomially every
    step and takes the heaviest particle."""
    chains = sampling(settings)
    if name == "self_consistency":
        return SelfConsistency(n=n, sampling=chains)
    if name == "best_of_n":
        return BestOfN(n=n, sampling=chains, verifier=outcome_verifier(), selection="argmax")
    search = {
        "n": n,
        "max_steps": settings.max_steps,
        "step": StepConfig(
            delimiters=(STEP_DELIMITER,),
            max_step_tokens=settings.step_tokens,
            answer_marker=ANSWER_MARKER,
        ),
        "sampling": chains,
        "verifier": step_verifier(),
    }
    if name == "beam":
        return BeamSearch(beam_width=beam_children(n, settings), selection="argmax", **search)
    if name == "particle_filter":
        return ParticleFilter(resampling="multinomial", selection="argmax", **search)
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
