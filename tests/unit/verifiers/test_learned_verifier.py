"""The learned verifier: the head's file round-trips and refuses what it cannot read; the
verifier refuses a file made for other features, and scores paths (whole or per step) in one
submission to a stand-in embedding client, charged to the budget."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.pooling import Pooled
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.errors import BadRequestError
from ponder.experiments.head_fitting import head_from_pipeline
from ponder.runtime import Run
from ponder.verifiers import LearnedVerifier, verifiers
from ponder.verifiers.features import Embedder, model_fingerprint
from ponder.verifiers.heads import Features, Head, HeadMetrics, VerifierFile, load_verifier, save_verifier
from tests.unit.verifiers.test_prm import CharTokenizer

class ChatTokenizer(CharTokenizer):
    """The PRM tests' tokenizer, with the assistant turn opened on request."""

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool,
                            add_generation_prompt: bool = False) -> str:
        return super().apply_chat_template(messages, tokenize) + ("[assistant]" * add_generation_prompt)


METRICS = HeadMetrics(
    kind="logistic", tried={"logistic": 0.9}, train_examples=10, train_positives=5,
    validation_examples=4, validation_positives=2, validation_auc=0.9, validation_brier=0.1,
    validation_ece=0.05,
)


def linear_head(weights: list[float], bias: float) -> Head:
    """A logistic head on raw features (no standardization): P = sigmoid(w·x + b)."""
    return Head(kind="logistic", mean=[0.0] * len(weights), scale=[1.0] * len(weights),
                weights=[[[w] for w in weights]], biases=[[bias]], metrics=METRICS)


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "feature-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"num_hidden_layers": 4}))
    (folder / "model.safetensors").write_bytes(b"0" * 64)
    return folder


def write_file(tmp_path: Path, model: Path, heads: dict[str, Head], layer: int | None = None) -> Path:
    features = Features(model=str(model), layer=layer, fingerprint=model_fingerprint(str(model)),
                        dimensions=heads[next(iter(heads))].inputs)
    return save_verifier(VerifierFile(features=features, heads=heads), tmp_path / "verifier.json")


# -- the file --------------------------------------------------------------------------------
@pytest.mark.parametrize("classifier", [
    LogisticRegression(C=1.0, max_iter=1000),
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=2000, random_state=0),
], ids=["logistic", "mlp"])
def test_a_fitted_head_predicts_what_scikit_learn_does_after_its_file_round_trip(
    tmp_path: Path, model_folder: Path, classifier: object
) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(2, 1, (40, 3))]) * [1, 10, 100]
    y = np.array([0] * 40 + [1] * 40)
    pipeline = make_pipeline(StandardScaler(), classifier).fit(x, y)
    path = write_file(tmp_path, model_folder, {"outcome": head_from_pipeline(pipeline, METRICS)})
    loaded = load_verifier(path).heads["outcome"]
    new = rng.normal(1, 2, (10, 3)) * [1, 10, 100]
    assert np.allclose(loaded.predict(new), pipeline.predict_proba(new)[:, 1], atol=1e-9)


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not a verifier file"),
    ('{"format": "something-else"}', "no format 'ponder-learned-verifier'"),
    ('{"format": "ponder-learned-verifier", "version": 7}', "version 7 of the verifier format"),
], ids=["not-json", "other-format", "other-version"])
def test_a_file_that_is_not_a_verifier_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "v.json"
    path.write_text(content)
    with pytest.raises(BadRequestError, match=message):
        load_verifier(path)


def test_a_missing_file_names_the_command_that_writes_one(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="path: no verifier file at .*ponder verifier train"):
        load_verifier(tmp_path / "none.json")


def test_a_head_that_does_not_read_the_features_is_refused(tmp_path: Path, model_folder: Path) -> None:
    path = write_file(tmp_path, model_folder, {"outcome": linear_head([1.0, 1.0], 0.0)})
    data = json.loads(path.read_text())
    data["features"]["dimensions"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(BadRequestError, match="head 'outcome' reads 2 features, the file's features have 3"):
        load_verifier(path)


def test_head_shapes_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="the last layer must have one output"):
        Head(kind="logistic", mean=[0.0], scale=[1.0], weights=[[[1.0, 2.0]]], biases=[[0.0, 0.0]],
             metrics=METRICS)


# -- the verifier: refusals --------------------------------------------------------------------
def test_a_file_for_other_features_is_refused_naming_the_field(tmp_path: Path, model_folder: Path) -> None:
    path = str(write_file(tmp_path, model_folder, {"outcome": linear_head([1.0], 0.0)}, layer=2))
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"num_hidden_layers": 8}))
    cases = [
        ({"model": str(other)}, "is not the feature model this verifier file was trained on"),
        ({"layer": 3}, "layer 3: this verifier file was trained on features of .* layer 2"),
        ({"step_delimiter": "\n"}, "step_delimiter"),
        ({"mode": "step"}, "mode 'step': the verifier file has no step head"),
    ]
    for fields, message in cases:
        with pytest.raises(BadRequestError, match=message):
            verifiers.build({"name": "learned", "path": path, **fields})
    assert verifiers.build({"name": "learned", "path": path, "layer": 2}).layer == 2


def test_a_missing_path_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="path"):
        verifiers.build({"name": "learned", "path": str(tmp_path / "nothing.json")})


async def test_a_feature_model_whose_weights_changed_is_refused_before_scoring(
    tmp_path: Path, model_folder: Path
) -> None:
    verifier = LearnedVerifier(path=str(write_file(tmp_path, model_folder, {"outcome": linear_head([1.0], 0.0)})))
    (model_folder / "model.safetensors").write_bytes(b"0" * 65)  # retrained: another size
    with pytest.raises(BadRequestError, match="now holds other weights; train it again"):
        await verifier.connect(context())


# -- the verifier: scoring -----------------------------------------------------------------------
class FeatureClient:
    """Embeds a prompt as (its length / 100, how many '+' it holds)."""

    def __init__(self, max_model_len: int = 4096) -> None:
        self.max_model_len = max_model_len
        self.submissions: list[list[list[int]]] = []

    def alive(self) -> bool:
        return True

    async def pool(self, prompts: list[list[int]], separator_id: int | None) -> list[Pooled]:
        self.submissions.append(prompts)
        return [Pooled([[len(p) / 100, float(p.count(ord("+")))]], len(p)) for p in prompts]

    async def close(self) -> None: ...


def features_of(embedder: Embedder, problem: Problem, text: str) -> tuple[int, list[float]]:
    prompt = embedder.prompt(problem, text)
    return len(prompt), [len(prompt) / 100, float(prompt.count(ord("+")))]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


HEAD = linear_head([-0.5, 2.0], 0.25)
PROBLEM = Problem(prompt="What is 2 + 3?")


@pytest.fixture
def scoring(tmp_path: Path, model_folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FeatureClient]:
    client = FeatureClient()
    path = write_file(tmp_path, model_folder, {"outcome": HEAD, "step": HEAD})

    async def connect(self: LearnedVerifier, ctx: Run) -> Embedder:
        return Embedder(self.file().features.spec(), client, ChatTokenizer())

    monkeypatch.setattr(LearnedVerifier, "connect", connect)
    return path, client


def context(budget: Budget | None = None) -> Run:
    return Run(ScriptedBackend.from_script([]), Ledger(budget or Budget()), random.Random(0))


def candidates(*texts: str) -> list[Candidate]:
    return [Candidate(index=i, text=t, num_tokens=0, finish_reason="stop") for i, t in enumerate(texts)]


async def test_outcome_scores_are_the_heads_probability_of_each_whole_path(scoring: tuple) -> None:
    path, client = scoring
    verifier = LearnedVerifier(path=str(path))
    texts = ["2 + 3 = 5.\n\nAnswer: 5", "Answer: 6", ""]
    ctx = context()
    scores = await verifier.score(PROBLEM, candidates(*texts), ctx)
    embedder = Embedder(verifier.file().features.spec(), client, ChatTokenizer())
    assert len(client.submissions) == 1 and len(client.submissions[0]) == 2  # the empty one not sent
    for text, score in zip(texts[:2], scores):
        _, x = features_of(embedder, PROBLEM, text)
        assert score.value == pytest.approx(sigmoid(-0.5 * x[0] + 2.0 * x[1] + 0.25))
    assert scores[2].value is None and scores[2].reason == "the path has no steps"
    sent = sum(len(p) for p in client.submissions[0])
    assert ctx.ledger.spent.prompt_tokens == sent
    assert ctx.ledger.spent.verifier_calls == 3


async def test_step_mode_scores_every_prefix_and_aggregates_them(scoring: tuple) -> None:
    path, client = scoring
    verifier = LearnedVerifier(path=str(path), mode="step", aggregation="min")
    (score,) = await verifier.score(PROBLEM, candidates("2 + 3 = 5.\n\n5 + 0 = 5.\n\nAnswer: 5"), context())
    embedder = Embedder(verifier.file().features.spec(), client, ChatTokenizer())
    prefixes = ["2 + 3 = 5.", "2 + 3 = 5.\n\n5 + 0 = 5.", "2 + 3 = 5.\n\n5 + 0 = 5.\n\nAnswer: 5"]
    assert client.submissions == [[embedder.prompt(PROBLEM, p) for p in prefixes]]
    steps = [sigmoid(-0.5 * x[0] + 2.0 * x[1] + 0.25)
             for x in (features_of(embedder, PROBLEM, p)[1] for p in prefixes)]
    assert score.steps == pytest.approx(steps)
    assert score.value == pytest.approx(min(steps))


async def test_a_path_longer_than_the_engine_takes_is_not_sent(scoring: tuple) -> None:
    path, client = scoring
    client.max_model_len = 60
    scores = await LearnedVerifier(path=str(path)).score(PROBLEM, candidates("short", "x" * 200), context())
    assert scores[0].value is not None
    assert scores[1].value is None and "max_model_len is 60" in scores[1].reason
    assert len(client.submissions[0]) == 1


async def test_a_budget_that_cannot_pay_the_prompt_tokens_scores_nothing(scoring: tuple) -> None:
    path, client = scoring
    scores = await LearnedVerifier(path=str(path)).score(
        PROBLEM, candidates("Answer: 5"), context(Budget(total_tokens=5))
    )
    assert scores[0].value is None and scores[0].reason.startswith("not scored")
    assert client.submissions == []


def test_the_embedder_prompt_is_the_chat_with_the_assistant_turn_open_then_the_path() -> None:
    tokenizer = ChatTokenizer()
    embedder = Embedder(Features(model="m", fingerprint="f", dimensions=1).spec(), None, tokenizer)  # type: ignore[arg-type]
    prompt = tokenizer.decode(embedder.prompt(PROBLEM, "Answer: 5"))
    assert prompt == "[user]What is 2 + 3?<end>[assistant]Answer: 5"
