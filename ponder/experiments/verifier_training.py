"""``ponder verifier train DATASET``: a verifier learned from labelled outcomes (a Hydra app
over ``configs/verifier_train.yaml``).

    ponder verifier train arithmetic dataset.size=60 strategy.n=8 labels.rollouts=4
    ponder verifier train word_problems dataset.limit=40 labels.rollouts=0   # outcome head only

1. Sample ``strategy.n`` chains per problem, as the strategy samples them.
2. Label each chain by its grade against the reference (the outcome head's labels), and each of
   its first ``labels.max_steps`` steps by Monte Carlo roll-outs from its token ids
   (``step_labels``; the step head's labels, the chain's grade for its last step).
3. Embed every path (whole chains, step prefixes) with the feature model on vLLM's pooling
   runner (``ponder.verifiers.features``: the same prompts the ``learned`` verifier builds).
4. Fit the heads, split by problem (``head_fitting``), and write the folder: ``verifier.json``
   (``ponder.verifiers.heads``), ``roc.png``, ``reliability.png``, ``examples.jsonl`` (every
   labelled path, for inspection) and ``metrics.json``.

Sampling and labelling come first for all problems, then embedding: the two engines (the
generator's and the pooling one) never compete for the CPU.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from ponder.backends.base import Backend
from ponder.budgets import Budget, Ledger
from ponder.config import config_dir
from ponder.core.problem import Problem
from ponder.core.registry import describe_validation_error
from ponder.core.result import Candidate
from ponder.core.usage import Usage
from ponder.errors import BadRequestError, PonderError
from ponder.experiments.app import call_hydra_app, exit_with, run_name
from ponder.experiments.datasets import dataset_config, load_problems
from ponder.experiments.engines import EngineHost
from ponder.experiments.head_fitting import Examples, Fitted, fit_head
from ponder.experiments.runner import problem_seed
from ponder.experiments.step_labels import rollout_values, step_boundaries
from ponder.experiments.verifier_plots import plot_reliability, plot_roc
from ponder.runtime import Run
from ponder.strategies import strategies
from ponder.strategies.pooling import SampledStrategy
from ponder.verifiers.features import Embedder, FeatureSpec, model_fingerprint, path_text
from ponder.verifiers.grading import Grade, grade
from ponder.verifiers.heads import Features, HeadName, VerifierFile, save_verifier
from ponder.verifiers.process import split_steps

log = logging.getLogger(__name__)

OmegaConf.register_new_resolver("ponder_run_name", run_name, replace=True)  # folder names

EMBED_BATCH = 256
"""Paths per embedding submission: large enough to batch well, small enough to show progress."""


class LabelSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rollouts: int = Field(4, ge=0, le=256, description="Roll-outs per labelled step; 0: none.")
    max_steps: int | None = Field(4, ge=1, description="Steps labelled per chain; None: all.")


class HeadSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    validation: float = Field(0.25, gt=0.0, lt=1.0, description="Share of problems held out.")
    min_positives: int = Field(5, ge=1)
    min_negatives: int = Field(5, ge=1)


class TrainConfig(BaseModel):
    """The app's own keys; the groups are validated by their builders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    concurrency: int = Field(16, ge=1)
    progress: bool = True
    labels: LabelSettings = LabelSettings()
    features: FeatureSpec = FeatureSpec()
    max_model_len: int = Field(2048, ge=16)
    gpu_memory_utilization: float = Field(0.1, gt=0.0, le=1.0)
    head: HeadSettings = HeadSettings()
    dataset: dict[str, Any]
    strategy: dict[str, Any]
    backend: dict[str, Any]


@dataclass
class LabelledChain:
    """A sampled chain with its labels."""

    problem: Problem
    candidate: Candidate
    steps: list[str]
    outcome: float
    """1.0 when the chain's answer is the reference, else 0.0."""
    step_values: list[float | None] = field(default_factory=list)
    """The Monte Carlo value after each labelled step but the last (None: not estimated)."""


@dataclass(frozen=True)
class Trained:
    file: VerifierFile
    fits: dict[HeadName, Fitted]
    chains: list[LabelledChain]
    examples: list[dict[str, Any]]


def sampling_strategy(spec: dict[str, Any]) -> SampledStrategy:
    """The strategy whose chains are labelled: one that samples its own chains from one
    prompt (so a step's prefix is that prompt plus the chain's first tokens)."""
    strategy = strategies.build(spec)
    if not isinstance(strategy, SampledStrategy) or strategy.sampler is not None:
        raise BadRequestError(
            f"strategy: {strategy.name!r} does not sample plain chains; use a sampling strategy "
            "such as self_consistency or best_of_n, without a sampler"
        )
    return strategy


def require_references(problems: Sequence[Problem], label: str) -> None:
    missing = [p for p in problems if p.reference is None]
    if missing:
        raise BadRequestError(
            f"dataset {label}: {len(missing)} of {len(problems)} problems have no reference "
            f"answer (e.g. {missing[0].id or missing[0].prompt!r}); a verifier is trained on "
            "chains labelled by their grade, so every problem needs one (dataset.fields.answer)"
        )


async def sample_and_label(
    problems: Sequence[Problem],
    strategy: SampledStrategy,
    backend: Backend,
    labels: LabelSettings,
    *,
    delimiter: str,
    seed: int = 0,
    concurrency: int = 16,
    bar: tqdm | None = None,
) -> tuple[list[LabelledChain], Usage]:
    """Every problem's chains with their labels, and what sampling and roll-outs spent.
    Up to ``concurrency`` problems at once; a problem's roll-outs all at once."""
    slots = asyncio.Semaphore(concurrency)
    spent = Usage()

    async def one(index: int, problem: Problem) -> list[LabelledChain]:
        async with slots:
            rng = random.Random(problem_seed(seed, problem.id or str(index)))
            ctx = Run(backend, Ledger(Budget()), rng)
            chains = await _label_chains(problem, strategy, ctx, labels, delimiter)
            spent.add(ctx.ledger.spent)
        if bar is not None:
            bar.update()
        return chains

    per_problem = await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
    return [chain for chains in per_problem for chain in chains], spent


async def _label_chains(
    problem: Problem, strategy: SampledStrategy, ctx: Run, labels: LabelSettings, delimiter: str
) -> list[LabelledChain]:
    reference = problem.reference or ""
    result = await strategy.run(problem, ctx)
    chains = [
        LabelledChain(
            problem, candidate, split_steps(candidate.text, delimiter),
            float(grade(candidate.answer, reference) == Grade.CORRECT),
        )
        for candidate in result.candidates
    ]
    if labels.rollouts == 0:
        return chains
    prompt = ctx.render(problem, strategy.system_prompt)

    async def values(chain: LabelledChain) -> list[float | None]:
        ids = chain.candidate.token_ids
        boundaries = step_boundaries(ids, ctx.decode, delimiter)[: labels.max_steps]
        return await rollout_values(
            ctx, prompt, ids, boundaries, reference, rollouts=labels.rollouts,
            sampling=strategy.sampling, extractor=strategy.extractor,
        )

    for chain, found in zip(chains, await asyncio.gather(*(values(c) for c in chains))):
        chain.step_values = found
    return chains


def labelled_paths(chains: Sequence[LabelledChain], head: HeadName) -> list[tuple[LabelledChain, int, float]]:
    """(chain, steps in the path, label) for every path a head trains on: each whole chain
    with its grade; for the step head also each labelled step prefix with its value."""
    paths = []
    for chain in chains:
        if not chain.steps:
            continue
        if head == "step":
            paths += [
                (chain, i + 1, value)
                for i, value in enumerate(chain.step_values)
                if value is not None and i + 1 < len(chain.steps)
            ]
        paths.append((chain, len(chain.steps), chain.outcome))
    return paths


async def embed_paths(
    embedder: Embedder, items: Sequence[tuple[Problem, str]], ctx: Run, bar: tqdm | None = None
) -> list[np.ndarray | str]:
    """Every (problem, text)'s embedding (or why it has none), ``EMBED_BATCH`` at a time."""
    vectors: list[np.ndarray | str] = []
    for start in range(0, len(items), EMBED_BATCH):
        batch = items[start : start + EMBED_BATCH]
        vectors += await embedder.embed(batch, ctx)
        if bar is not None:
            bar.update(len(batch))
    return vectors


async def train(
    problems: Sequence[Problem], config: TrainConfig, backend: Backend, *, dataset_label: str
) -> Trained:
    """Sample, label, embed and fit (see the module docstring); nothing is written here."""
    require_references(problems, dataset_label)
    strategy = sampling_strategy(config.strategy)
    started = time.perf_counter()
    with _bar(config, len(problems), "sampling and labelling", "problem") as bar:
        chains, spent = await sample_and_label(
            problems, strategy, backend, config.labels, delimiter=config.features.step_delimiter,
            seed=config.seed, concurrency=config.concurrency, bar=bar,
        )
    trained = await fit_verifier(chains, config, backend, spent=spent)
    training = {
        "dataset": dataset_label, "problems": len(problems), **trained.file.training,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return dataclasses.replace(trained, file=trained.file.model_copy(update={"training": training}))


async def fit_verifier(
    chains: Sequence[LabelledChain], config: TrainConfig, backend: Backend, *, spent: Usage
) -> Trained:
    """Embed labelled chains with ``config.features`` and fit the heads on them. Chains
    sampled once can be fitted on several feature specs (a benchmark comparing layers)."""
    spec = config.features
    heads: list[HeadName] = ["outcome", "step"] if config.labels.rollouts else ["outcome"]
    paths = {name: labelled_paths(chains, name) for name in heads}
    unique = list(dict.fromkeys(
        (chain.problem, path_text(chain.steps[:count], spec.step_delimiter))
        for found in paths.values() for chain, count, _ in found
    ))
    ctx = Run(backend, Ledger(Budget()))
    embedder = await Embedder.connect(
        spec, ctx, max_model_len=config.max_model_len, gpu_share=config.gpu_memory_utilization
    )
    with _bar(config, len(unique), "embedding", "path") as bar:
        vectors = dict(zip(unique, await embed_paths(embedder, unique, ctx, bar)))
    spent = spent + ctx.ledger.spent
    fits: dict[HeadName, Fitted] = {}
    examples: list[dict[str, Any]] = []
    for name in heads:
        rows, labels, groups = [], [], []
        for chain, count, label in paths[name]:
            text = path_text(chain.steps[:count], spec.step_delimiter)
            vector = vectors[(chain.problem, text)]
            examples.append({
                "head": name, "problem": chain.problem.id, "chain": chain.candidate.index,
                "steps": count, "of_steps": len(chain.steps), "label": label,
                "embedded": not isinstance(vector, str), "text": text,
            })
            if not isinstance(vector, str):
                rows.append(vector)
                labels.append(label)
                groups.append(chain.problem.id or chain.problem.prompt or "")
        if not rows:
            raise BadRequestError(f"no path could be embedded for the {name} head (max_model_len?)")
        fits[name] = fit_head(
            Examples(np.stack(rows), np.asarray(labels, dtype=float), groups), name=name,
            validation=config.head.validation, min_positives=config.head.min_positives,
            min_negatives=config.head.min_negatives, seed=config.seed,
        )
    dimensions = next(v for v in vectors.values() if not isinstance(v, str)).shape[0]
    file = VerifierFile(
        features=Features(
            **spec.model_dump(), fingerprint=model_fingerprint(spec.model), dimensions=dimensions
        ),
        heads={name: fit.head for name, fit in fits.items()},
        training={
            "chains": len(chains),
            "correct_chains": int(sum(c.outcome for c in chains)),
            "strategy": config.strategy,
            "labels": config.labels.model_dump(),
            "backend_model": config.backend.get("model"),
            "seed": config.seed,
            "generated_tokens": spent.generated_tokens,
            "prompt_tokens": spent.prompt_tokens,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return Trained(file, fits, chains, examples)


def write_folder(trained: Trained, folder: Path) -> list[Path]:
    """The verifier file, its plots, its examples and its metrics, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "examples.jsonl").open("w") as out:
        for example in trained.examples:
            out.write(json.dumps(example) + "\n")
    metrics = {name: head.metrics.model_dump() for name, head in trained.file.heads.items()}
    (folder / "metrics.json").write_text(json.dumps(
        {"heads": metrics, "training": trained.file.training}, indent=2
    ))
    return [
        save_verifier(trained.file, folder / "verifier.json"),
        plot_roc(trained.fits, folder / "roc.png"),
        plot_reliability(trained.fits, folder / "reliability.png"),
        folder / "examples.jsonl",
        folder / "metrics.json",
    ]


def metrics_table(file: VerifierFile) -> str:
    """The heads' validation numbers, one line each."""
    lines = [f"{'head':8} {'kind':14} {'val AUC':>7} {'Brier':>6} {'ECE':>6} {'train':>11} "
             f"{'validation':>11}  AUC of each head tried"]
    for name, head in file.heads.items():
        m = head.metrics
        auc = "n/a" if m.validation_auc is None else f"{m.validation_auc:.3f}"
        tried = ", ".join(f"{k}: {'n/a' if v is None else f'{v:.3f}'}" for k, v in m.tried.items())
        lines.append(
            f"{name:8} {m.kind:14} {auc:>7} {m.validation_brier:6.3f} {m.validation_ece:6.3f} "
            f"{m.train_positives:>4}/{m.train_examples:<6} {m.validation_positives:>4}/"
            f"{m.validation_examples:<6}  {tried}"
        )
    return "\n".join(lines)


def run_training(settings: dict[str, Any], folder: Path, host: EngineHost) -> list[Path]:
    """Validate everything, train, write the folder; prints the metrics."""
    try:
        config = TrainConfig.model_validate(settings)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("verifier train", exc)) from None
    sampling_strategy(config.strategy)  # refused before any model loads
    source = dataset_config(config.dataset)
    problems = load_problems(source)
    require_references(problems, source.label)

    async def go() -> Trained:
        backend, _ = await host.backend(config.backend)
        try:
            return await train(problems, config, backend, dataset_label=source.label)
        finally:
            await host.release()

    trained = host.run(go())
    files = write_folder(trained, folder)
    training = trained.file.training
    print(f"{training['problems']} problems, {training['chains']} chains "
          f"({training['correct_chains']} correct), {training['generated_tokens']} generated tokens, "
          f"{training['seconds']} s")
    print(metrics_table(trained.file))
    print("wrote " + ", ".join(str(f) for f in files))
    return files


HOST = EngineHost()


@hydra.main(config_path=str(config_dir()), config_name="verifier_train", version_base=None)
def _job(cfg: DictConfig) -> None:
    settings = OmegaConf.to_container(cfg, resolve=True)
    folder = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_training(settings, folder, HOST)  # type: ignore[arg-type]
    except BadRequestError as exc:
        exit_with(exc, 2)
    except PonderError as exc:
        exit_with(exc, 1)


def _bar(config: TrainConfig, total: int, what: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=what, unit=unit, disable=not config.progress, file=sys.stderr,
                dynamic_ncols=True)


def main(argv: Sequence[str]) -> int:
    """Run the app with ``argv``: the dataset's config name, then Hydra's arguments."""
    if not argv or "=" in argv[0] or argv[0].startswith("-"):
        print("usage: ponder verifier train DATASET [key=value ...] (DATASET: a configs/dataset/ "
              "name, e.g. arithmetic or word_problems)", file=sys.stderr)
        return 2
    return call_hydra_app(_job, "ponder verifier train", [f"dataset={argv[0]}", *argv[1:]], HOST)
