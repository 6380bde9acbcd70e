"""``ponder verifier train`` end to end as a user runs it (its own process, the embedded model
sampling, Monte Carlo roll-outs, embeddings from vLLM's pooling runner), then best-of-N on the
session's engine scoring its chains with the file it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.search import StepConfig
from ponder.strategies import BeamSearch, BestOfN, SamplingConfig
from ponder.verifiers import LearnedVerifier
from ponder.verifiers.heads import load_verifier

pytestmark = pytest.mark.integration

TINY = [
    "dataset.size=16", "strategy.n=4", "strategy.sampling.max_tokens=48",
    "labels.rollouts=2", "labels.max_steps=1", "head.min_positives=2", "head.min_negatives=2",
    "progress=false",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("verifier")
    completed = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "verifier", "train", "arithmetic", *TINY,
         f"hydra.run.dir={folder}"],
        cwd=folder, capture_output=True, text=True, timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "val AUC" in completed.stdout
    return folder


def test_training_writes_the_verifier_its_plots_and_its_examples(trained: Path) -> None:
    file = load_verifier(trained / "verifier.json")
    assert set(file.heads) == {"outcome", "step"}
    assert file.features.dimensions == 576  # SmolLM2-135M's hidden size
    assert file.training["problems"] == 16 and file.training["chains"] == 64
    outcome = file.heads["outcome"].metrics
    assert outcome.train_examples + outcome.validation_examples == 64
    examples = [json.loads(line) for line in (trained / "examples.jsonl").read_text().splitlines()]
    outcome_labels = [e["label"] for e in examples if e["head"] == "outcome"]
    assert sum(outcome_labels) == file.training["correct_chains"]
    step_labels = [e["label"] for e in examples if e["head"] == "step" and e["steps"] < e["of_steps"]]
    assert all(label in (0.0, 0.5, 1.0) for label in step_labels)  # shares of 2 roll-outs
    for plot in ("roc.png", "reliability.png"):
        assert (trained / plot).read_bytes().startswith(b"\x89PNG")
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["heads"]["outcome"]["validation_auc"] == outcome.validation_auc


@pytest.mark.asyncio(loop_scope="session")
async def test_best_of_n_scores_its_chains_with_the_trained_file(
    trained: Path, engine: VllmBackend
) -> None:
    path = str(trained / "verifier.json")
    for mode in ("outcome", "step"):
        verifier = LearnedVerifier(path=path, mode=mode)
        strategy = BestOfN(n=4, verifier=verifier, sampling=SamplingConfig(max_tokens=48))
        result = await asolve("What is 8 + 5?", strategy=strategy, backend=engine)
        scored = [c for c in result.candidates if c.score is not None]
        assert scored, [c.score_reason for c in result.candidates]
        assert all(0.0 < c.score < 1.0 for c in scored)
        best = max(scored, key=lambda c: c.score)
        assert result.answer == best.answer
        assert result.usage.verifier_calls == len({c.text for c in result.candidates})
        # every embedded path's tokens (its text after the problem's chat) are charged
        texts = {c.text for c in result.candidates}
        assert result.usage.prompt_tokens > sum(len(engine.encode(t)) for t in texts)


@pytest.mark.asyncio(loop_scope="session")
async def test_beam_search_ranks_its_steps_with_the_step_head(trained: Path, engine: VllmBackend) -> None:
    verifier = LearnedVerifier(path=str(trained / "verifier.json"), mode="step")
    strategy = BeamSearch(
        n=4, beam_width=2, max_steps=2, verifier=verifier,
        sampling=SamplingConfig(max_tokens=64), step=StepConfig(max_step_tokens=32),
    )
    result = await asolve("What is 8 + 5?", strategy=strategy, backend=engine)
    assert result.candidates
    assert result.usage.verifier_calls > 0
    scored = [c for c in result.candidates if c.score is not None]
    assert scored and all(0.0 < c.score < 1.0 for c in scored)
