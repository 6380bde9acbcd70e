"""its_hub's side of the peer benchmark; runs in the peers' environment (``make peers``).

Reads a job from stdin (JSON: server URL, served model name, tokenizer folder, strategy, N,
settings, problems), runs its_hub's algorithm on every problem at once against the server,
and prints JSON: the selected response per problem and the wall time of the runs alone
(imports, tokenizer loading and client set-up are outside it).

its_hub is used as its documentation shows: ``OpenAICompatibleLanguageModel`` on the chat
API with ponder's system prompt, ``StepGeneration`` splitting steps at blank lines and
ending a path on the answer marker, its own orchestrator without a concurrency cap. The
scorer adapters give its_hub ponder's verifiers, judging through ponder's OpenAI backend
on the same server: one verifier context per problem, as ponder's own runs have, so both
tools judge each distinct step once.

Mapping of the knobs: its_hub's ``budget`` is N; its beam search keeps ``beam_width`` paths
and gives each ``budget / beam_width`` children, so its ``beam_width`` is ponder's
``n / beam_width``; its ``StepGeneration`` ends a path once it has more than ``max_steps``
steps, so it gets ponder's ``max_steps - 1``. Self-consistency votes on the answer ponder's
extractor finds (normalised), or on the whole text where it finds none, as its_hub's
default projection does.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import numpy as np
from its_hub.api import AbstractOutcomeRewardModel, AbstractProcessRewardModel
from its_hub.core.algorithms.beam_search import BeamSearch
from its_hub.core.algorithms.bon import BestOfN
from its_hub.core.algorithms.particle_gibbs import ParticleFiltering
from its_hub.core.algorithms.self_consistency import SelfConsistency
from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel
from its_hub.core.lms.step_generation import StepGeneration
from its_hub.core.orchestrator import LMOrchestrator
from peer_settings import (
    ANSWER_MARKER,
    STEP_DELIMITER,
    Settings,
    beam_children,
    outcome_verifier,
    step_verifier,
)

from ponder.backends.openai_backend import OpenAIBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Verifier
from ponder.verifiers.equivalence import normalize_answer


class _PonderScorer:
    """One ponder verifier over one problem, with that problem's verifier context."""

    def __init__(self, verifier: Verifier, problem: Problem, judge: OpenAIBackend) -> None:
        self.verifier, self.problem = verifier, problem
        self.ctx = Run(backend=judge, ledger=Ledger(Budget()))
        self.unscored = 0
        """Texts the verifier could not score; its_hub needs a number, so they get 0."""

    async def scores(self, texts: list[str]) -> list[float]:
        candidates = [
            Candidate(index=i, text=t, num_tokens=0, finish_reason=None)
            for i, t in enumerate(texts)
        ]
        scores = await self.verifier.score(self.problem, candidates, self.ctx)
        self.unscored += sum(s.value is None for s in scores)
        return [0.0 if s.value is None else s.value for s in scores]


class PonderStepReward(_PonderScorer, AbstractProcessRewardModel):
    """its_hub's process reward model: each partial solution's score from ponder's step
    scorer (the last step's verdict, given the steps before it)."""

    async def ascore(self, prompt_or_messages: Any, steps: list[str]) -> list[float]:
        return await self.scores(steps)

    def score(self, prompt_or_messages: Any, steps: list[str]) -> list[float]:
        return asyncio.run(self.ascore(prompt_or_messages, steps))


class PonderOutcomeReward(_PonderScorer, AbstractOutcomeRewardModel):
    """its_hub's outcome reward model: each conversation's last message judged by ponder's
    solution judge."""

    async def ascore(self, messages: Any, orchestrator: Any = None, **kwargs: Any) -> list[float]:
        return await self.scores([conversation[-1].content or "" for conversation in messages])

    def score(self, messages: Any, **kwargs: Any) -> list[float]:
        return asyncio.run(self.ascore(messages))


def vote_key(extractor: AnswerExtractor) -> Any:
    def key(text: str) -> str:
        answer = extractor.extract(text)
        return normalize_answer(answer) if answer is not None else text.strip()

    return key


def algorithm(
    name: str, n: int, settings: Settings, problem: Problem, judge: OpenAIBackend
) -> tuple[Any, _PonderScorer | None]:
    """its_hub's algorithm ``name`` for one problem, and its scorer adapter (if it has one)."""
    orchestrator = LMOrchestrator(max_concurrency=-1)
    if name == "self_consistency":
        return SelfConsistency(vote_key(AnswerExtractor()), orchestrator=orchestrator), None
    if name == "best_of_n":
        judge_outcome = PonderOutcomeReward(outcome_verifier(), problem, judge)
        return BestOfN(judge_outcome, orchestrator=orchestrator), judge_outcome
    steps = StepGeneration(
        max_steps=settings.max_steps - 1,
        step_token=STEP_DELIMITER,
        stop_token=ANSWER_MARKER,
        temperature=settings.temperature,
    )
    judge_steps = PonderStepReward(step_verifier(), problem, judge)
    if name == "beam":
        return BeamSearch(
            steps, judge_steps, beam_width=n // beam_children(n, settings)
        ), judge_steps
    if name == "particle_filter":
        return ParticleFiltering(steps, judge_steps, final_response_selection="argmax"), judge_steps
    raise ValueError(f"strategy: its_hub has no counterpart for {name!r}")


async def run(job: dict[str, Any]) -> dict[str, Any]:
    settings = Settings.from_dict(job["settings"])
    name, n = job["strategy"], job["n"]
    search = name in ("beam", "particle_filter")
    lm = OpenAICompatibleLanguageModel(
        endpoint=job["url"],
        api_key="EMPTY",
        model_name=job["model"],
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        temperature=settings.temperature,
        max_completion_tokens=settings.step_tokens if search else settings.max_tokens,
    )
    judge = OpenAIBackend(base_url=job["url"], model=job["model"], tokenizer=job["tokenizer"])
    problems = [Problem(**p) for p in job["problems"]]
    built = [algorithm(name, n, settings, p, judge) for p in problems]
    random.seed(settings.seed)  # its_hub draws ties and resampling from the global streams
    np.random.seed(settings.seed)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            algo.ainfer(lm, p.prompt, budget=n, return_response_only=True)
            for (algo, _), p in zip(built, problems)
        )
    )
    seconds = time.perf_counter() - started
    await lm.close()
    await judge.close()
    return {
        "seconds": seconds,
        "responses": [r.get("content") or "" for r in results],
        "unscored": sum(scorer.unscored for _, scorer in built if scorer is not None),
    }


def main() -> int:
    """Print the report, or ``{"error": ...}`` and exit 1: stdout's last line is the answer
    (stderr ends with whatever the libraries print at exit)."""
    try:
        print(json.dumps(asyncio.run(run(json.load(sys.stdin)))))
    except Exception as exc:  # noqa: BLE001 - reported to the harness, which marks the row
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
