"""The learned verifier, beyond ``test_learned_verifier.py``: the head's numbers (standardize,
ReLU between layers only, a sigmoid that does not overflow), the file written whole and read
again only when it changed, the shapes a head and a file must have, what identifies a feature
model's weights, the validator's refusals (and the copy of a model it accepts), ``connect``
handing the engine the spec and settings, and scoring over a stand-in embedding client:
outcome paths as the training side writes them, every step prefix in one submission with
each aggregation, prefixes too long for the engine, features of the wrong width, and budgets
that refuse the calls or run out of time."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ponder.budgets import Budget
from ponder.core.pooling import Pooled, PoolingEngineSettings
from ponder.core.problem import Problem
from ponder.errors import BadRequestError
from ponder.experiments.head_fitting import head_from_pipeline
from ponder.runtime import Run
from ponder.verifiers import LearnedVerifier, verifiers
from ponder.verifiers.aggregation import aggregate
from ponder.verifiers.base import Score
from ponder.verifiers.features import Embedder, FeatureSpec, model_fingerprint, pooling_settings
from ponder.verifiers.heads import Features, Head, HeadMetrics, VerifierFile, load_verifier, save_verifier
from tests.unit.verifiers.test_learned_verifier import ChatTokenizer, candidates, context, sigmoid

METRICS = HeadMetrics(
    kind="logistic", tried={"logistic": 0.8}, train_examples=8, train_positives=4,
    validation_examples=4, validation_positives=2, validation_auc=0.8, validation_brier=0.2,
    validation_ece=0.1,
)
PROBLEM = Problem(prompt="What is 1 + 2?")


def logistic(weights: list[float], bias: float, mean: list[float] | None = None,
             scale: list[float] | None = None) -> Head:
    """P = sigmoid(w · (x - mean) / scale + b)."""
    return Head(kind="logistic", mean=mean or [0.0] * len(weights), scale=scale or [1.0] * len(weights),
                weights=[[[w] for w in weights]], biases=[[bias]], metrics=METRICS)


HEAD = logistic([0.02, 1.5], -1.0)
"""On the fake client's features (prompt length, count of '+'): P = sigmoid(0.02·len + 1.5·plus - 1)."""


def expected(prompt: list[int]) -> float:
    return sigmoid(0.02 * len(prompt) + 1.5 * prompt.count(ord("+")) - 1.0)


def make_model(folder: Path, layers: int = 4, weight_bytes: int = 32) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"num_hidden_layers": layers}))
    (folder / "model.safetensors").write_bytes(b"\0" * weight_bytes)
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "models" / "tiny")


def verifier_file(model: Path, heads: dict[str, Head], **features: object) -> VerifierFile:
    spec = {"model": str(model), "fingerprint": model_fingerprint(str(model)),
            "dimensions": next(iter(heads.values())).inputs, **features}
    return VerifierFile(features=Features(**spec), heads=heads)


def write(tmp_path: Path, model: Path, heads: dict[str, Head] | None = None, **features: object) -> str:
    file = verifier_file(model, heads or {"outcome": HEAD, "step": HEAD}, **features)
    return str(save_verifier(file, tmp_path / "verifier.json"))


class FakeEmbeddingClient:
    """Embeds a prompt as (its length, how many '+' it holds); records what was submitted."""

    def __init__(self, max_model_len: int = 4096, width: int = 2, delay: float = 0.0) -> None:
        self.max_model_len = max_model_len
        self.width = width
        self.delay = delay
        self.submissions: list[list[list[int]]] = []

    @property
    def alive(self) -> bool:
        return True

    async def pool(self, prompts: list[list[int]], separator_id: int | None) -> list[Pooled]:
        assert separator_id is None  # an embedding engine pools no separator
        self.submissions.append(prompts)
        if self.delay:
            await asyncio.sleep(self.delay)
        rows = [[float(len(p)), float(p.count(ord("+")))] + [0.0] * (self.width - 2) for p in prompts]
        return [Pooled([row], len(p)) for row, p in zip(rows, prompts)]

    async def close(self) -> None: ...


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeEmbeddingClient:
    """The client every LearnedVerifier connects to in the test."""
    fake = FakeEmbeddingClient()

    async def connect(self: LearnedVerifier, ctx: Run) -> Embedder:
        return Embedder(self.file().features.spec(), fake, ChatTokenizer())

    monkeypatch.setattr(LearnedVerifier, "connect", connect)
    return fake


def prompt_of(text: str, spec: FeatureSpec | None = None) -> list[int]:
    return Embedder(spec or FeatureSpec(), None, ChatTokenizer()).prompt(PROBLEM, text)  # type: ignore[arg-type]


# -- the head's numbers --------------------------------------------------------------------------
def test_a_logistic_head_standardizes_then_applies_the_sigmoid() -> None:
    head = logistic([1.0, -1.0], 0.5, mean=[1.0, 2.0], scale=[2.0, 4.0])
    rows = np.array([[1.0, 2.0], [5.0, 2.0], [1.0, 10.0]])
    assert head.predict(rows) == pytest.approx([sigmoid(0.5), sigmoid(2.5), sigmoid(-1.5)], abs=1e-12)


def test_extreme_logits_give_zero_and_one_without_overflow() -> None:
    head = logistic([1.0], 0.0)
    with np.errstate(all="raise"):
        assert head.predict(np.array([[1e4], [-1e4]])).tolist() == [1.0, 0.0]


def test_relu_is_applied_between_layers_and_not_after_the_last() -> None:
    # hidden = relu(x, -x); logit = hidden0 - hidden1 - 1: |x| would be hidden0 + hidden1
    head = Head(kind="mlp", mean=[0.0], scale=[1.0], weights=[[[1.0, -1.0]], [[1.0], [-1.0]]],
                biases=[[0.0, 0.0], [-1.0]], metrics=METRICS)
    assert head.predict(np.array([[3.0], [-3.0]])) == pytest.approx([sigmoid(2.0), sigmoid(-4.0)])


def test_a_two_hidden_layer_mlp_round_trips_through_its_file(tmp_path: Path, model: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (120, 2)) * [1.0, 50.0]
    y = ((x[:, 0] * x[:, 1]) > 0).astype(int)  # XOR-like: needs the hidden layers
    pipeline = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(6, 4), max_iter=3000, random_state=0)
    ).fit(x, y)
    head = head_from_pipeline(pipeline, METRICS)
    assert head.kind == "mlp" and [len(b) for b in head.biases] == [6, 4, 1]
    loaded = load_verifier(write(tmp_path, model, {"outcome": head})).heads["outcome"]
    new = rng.normal(0, 2, (25, 2)) * [1.0, 50.0]
    assert np.allclose(loaded.predict(new), pipeline.predict_proba(new)[:, 1], rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_head_from_pipeline_refuses_what_the_file_cannot_hold() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    tanh = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(2,), activation="tanh",
                                                         max_iter=20, random_state=0))
    tanh.fit(x, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="hidden layers must be ReLU, not tanh"):
        head_from_pipeline(tanh, METRICS)
    other_classes = make_pipeline(StandardScaler(), MLPClassifier(max_iter=20, random_state=0))
    other_classes.fit(x, [1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"classes 0 and 1, not \[1, 2\]"):
        head_from_pipeline(other_classes, METRICS)


# -- the file ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "message"), [
    ({"scale": [1.0]}, "mean, scale, weights and biases do not fit together"),
    ({"weights": [[[1.0]]]}, "a layer's weights are not 2 × 1"),
    ({"weights": [[[1.0], [1.0]]], "biases": []}, "do not fit together"),
], ids=["scale", "first-layer", "no-biases"])
def test_a_head_whose_shapes_do_not_fit_is_refused(fields: dict, message: str) -> None:
    head = {"kind": "logistic", "mean": [0.0, 0.0], "scale": [1.0, 1.0], "weights": [[[1.0], [1.0]]],
            "biases": [[0.0]], "metrics": METRICS, **fields}
    with pytest.raises(ValidationError, match=message):
        Head(**head)


def test_a_file_with_no_head_is_refused(model: Path) -> None:
    features = verifier_file(model, {"outcome": HEAD}).features
    with pytest.raises(ValidationError, match="the file has no head"):
        VerifierFile(features=features, heads={})


def test_asking_for_a_head_the_file_lacks_says_how_to_train_one(model: Path) -> None:
    file = verifier_file(model, {"outcome": HEAD})
    assert file.head("outcome") is file.heads["outcome"]
    with pytest.raises(BadRequestError, match=r"mode 'step': the verifier file has no step head "
                                              r"\(it has outcome\); train with labels.rollouts > 0"):
        file.head("step")


def test_a_malformed_head_in_a_file_is_refused_naming_the_file(tmp_path: Path, model: Path) -> None:
    path = Path(write(tmp_path, model))
    data = json.loads(path.read_text())
    data["heads"]["step"].update(weights=[[[1.0, 1.0], [1.0, 1.0]]], biases=[[0.0, 0.0]])  # two outputs
    path.write_text(json.dumps(data))
    with pytest.raises(BadRequestError, match=re.escape(f"verifier file {path}.heads.step: ") +
                       ".*the last layer must have one output, not 2"):
        load_verifier(path)


def test_the_file_is_written_whole_and_read_back_equal(tmp_path: Path, model: Path) -> None:
    file = verifier_file(model, {"outcome": HEAD}, layer=3, pooling="MEAN", system_prompt="Check.")
    path = save_verifier(file.model_copy(update={"training": {"chains": 12}}), tmp_path / "new" / "v.json")
    assert [p.name for p in path.parent.iterdir()] == ["v.json"]  # no staging file left
    loaded = load_verifier(path)
    assert loaded.model_dump() == {**file.model_dump(), "training": {"chains": 12}}
    assert loaded.features.spec() == FeatureSpec(model=str(model), layer=3, pooling="MEAN",
                                                 system_prompt="Check.")


def test_the_file_is_read_again_only_when_it_changed(tmp_path: Path, model: Path) -> None:
    path = write(tmp_path, model, {"outcome": logistic([1.0, 1.0], 0.0)})
    first = load_verifier(path)
    assert load_verifier(path) is first  # unchanged: the file read before
    write(tmp_path, model, {"outcome": logistic([1.0, 1.0], -0.125)})  # retrained in place
    again = load_verifier(path)
    assert again.heads["outcome"].biases == [[-0.125]]


# -- the feature model's fingerprint ----------------------------------------------------------------
def test_a_fingerprint_follows_the_weights_not_the_folder(tmp_path: Path, model: Path) -> None:
    fingerprint = model_fingerprint(str(model))
    copy = shutil.copytree(model, tmp_path / "elsewhere" / "renamed")
    assert model_fingerprint(str(copy)) == fingerprint
    (copy / "README.md").write_text("not weights")
    assert model_fingerprint(str(copy)) == fingerprint
    (copy / "model-00002.safetensors").write_bytes(b"\0")  # another shard
    assert model_fingerprint(str(copy)) != fingerprint
    other_config = make_model(tmp_path / "deeper", layers=8)
    assert model_fingerprint(str(other_config)) != fingerprint
    assert model_fingerprint("org/some-model") == "hub:org/some-model"


def test_a_folder_without_a_config_has_no_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadRequestError, match="has no config.json"):
        model_fingerprint(str(tmp_path / "empty"))


# -- the verifier's refusals ------------------------------------------------------------------------
def test_a_copy_of_the_feature_model_is_accepted(tmp_path: Path, model: Path) -> None:
    path = write(tmp_path, model)
    copy = shutil.copytree(model, tmp_path / "copy")
    assert verifiers.build({"name": "learned", "path": path, "model": str(copy)}).model == str(copy)


@pytest.mark.parametrize(("fields", "message"), [
    ({"model": "/no/such/model"}, r"model '/no/such/model' is not the feature model .*model '.*tiny', "
                                  r"the last layer, LAST pooling"),
    ({"model": "org/other"}, "model 'org/other' is not the feature model"),
    ({"layer": 2}, "layer 2: this verifier file was trained on features of .*the last layer, LAST "
                   "pooling; train one on layer 2"),
    ({"step_delimiter": "\n"}, r"step_delimiter '\\n': the file's steps were split at '\\n\\n'"),
], ids=["missing-folder", "hub-name", "layer", "step-delimiter"])
def test_settings_the_file_was_not_trained_for_are_refused_naming_the_field(
    tmp_path: Path, model: Path, fields: dict, message: str
) -> None:
    path = write(tmp_path, model, {"outcome": HEAD})
    with pytest.raises(BadRequestError, match=message):
        verifiers.build({"name": "learned", "path": path, **fields})


def test_a_file_that_is_not_a_verifier_is_refused_through_the_registry(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text("[1, 2]")
    with pytest.raises(BadRequestError, match="path: .* is not a verifier file"):
        verifiers.build({"name": "learned", "path": str(tmp_path / "v.json")})
    with pytest.raises(BadRequestError, match="verifier.path: Field required"):
        verifiers.build({"name": "learned"})


# -- connecting -------------------------------------------------------------------------------------
async def test_connect_hands_the_engine_the_files_spec_and_the_verifiers_settings(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[FeatureSpec, int, float]] = []

    async def connect(cls: type, spec: FeatureSpec, ctx: Run, *, max_model_len: int, gpu_share: float) -> str:
        asked.append((spec, max_model_len, gpu_share))
        return "embedder"

    monkeypatch.setattr(Embedder, "connect", classmethod(connect))
    path = write(tmp_path, model, layer=2, pooling="MEAN")
    copy = shutil.copytree(model, tmp_path / "copy")
    assert await LearnedVerifier(path=path).connect(context()) == "embedder"
    verifier = LearnedVerifier(path=path, model=str(copy), max_model_len=512, gpu_memory_utilization=0.3)
    await verifier.connect(context())
    spec = load_verifier(path).features.spec()
    assert asked == [(spec, 2048, 0.1), (spec.model_copy(update={"model": str(copy)}), 512, 0.3)]


def test_the_embedding_engine_pools_the_specs_way(model: Path) -> None:
    settings = pooling_settings(FeatureSpec(model=str(model), pooling="MEAN"), 512, 0.2)
    assert settings == PoolingEngineSettings(str(model.resolve()), None, 512, 0.2, embedding="MEAN")


# -- scoring whole paths ------------------------------------------------------------------------------
async def test_outcome_scores_embed_each_path_as_training_did_in_one_submission(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    verifier = LearnedVerifier(path=write(tmp_path, model))
    texts = ["  1 + 2 = 3\n\n\n\nAnswer: 3\n", "Answer: 4", " \n\n ", "Answer: 4"]
    ctx = context()
    scores = await verifier.score(PROBLEM, candidates(*texts), ctx)
    # steps stripped and joined by the delimiter, as `ponder verifier train` embeds them;
    # the blank path is not sent, the repeated one is sent once
    sent = [prompt_of("1 + 2 = 3\n\nAnswer: 3"), prompt_of("Answer: 4")]
    assert client.submissions == [sent]
    assert scores[0] == Score(pytest.approx(expected(sent[0])))
    assert scores[1] == scores[3] == Score(pytest.approx(expected(sent[1])))
    assert scores[0].value != pytest.approx(scores[1].value)
    assert scores[2] == Score(None, "the path has no steps")
    assert ctx.ledger.spent.prompt_tokens == len(sent[0]) + len(sent[1])
    assert ctx.ledger.spent.verifier_calls == 3  # one per distinct path


async def test_a_path_too_long_for_the_engine_is_not_sent_and_says_so(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    short = prompt_of("Answer: 3")
    client.max_model_len = len(short)
    scores = await LearnedVerifier(path=write(tmp_path, model)).score(
        PROBLEM, candidates("Answer: 3", "Answer: 33"), context()
    )
    assert client.submissions == [[short]]
    assert scores[0].value == pytest.approx(expected(short))
    assert scores[1] == Score(None, f"the feature prompt is {len(short) + 1} tokens; "
                                    f"max_model_len is {len(short)}")


async def test_features_of_another_width_than_the_head_reads_are_refused(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    client.width = 3
    with pytest.raises(BadRequestError, match="gives 3 features, the verifier file's head reads 2"):
        await LearnedVerifier(path=write(tmp_path, model)).score(PROBLEM, candidates("Answer: 3"), context())


# -- scoring every step -------------------------------------------------------------------------------
@pytest.mark.parametrize("aggregation", ["last", "min", "prod", "mean"])
async def test_step_mode_scores_every_prefix_of_every_path_in_one_submission(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient, aggregation: str
) -> None:
    verifier = verifiers.build({"name": "learned", "path": write(tmp_path, model), "mode": "step",
                                "aggregation": aggregation})
    assert isinstance(verifier, LearnedVerifier)
    texts = ["1 + 2 = 3\n\nAnswer: 3", "", "1 + 1 + 1 = 3\n\n3 + 0 = 3\n\nAnswer: 3"]
    ctx = context()
    scores = await verifier.score(PROBLEM, candidates(*texts), ctx)
    prefixes = [["1 + 2 = 3", "1 + 2 = 3\n\nAnswer: 3"], [],
                ["1 + 1 + 1 = 3", "1 + 1 + 1 = 3\n\n3 + 0 = 3", "1 + 1 + 1 = 3\n\n3 + 0 = 3\n\nAnswer: 3"]]
    sent = [prompt_of(p) for path in prefixes for p in path]
    assert client.submissions == [sent]  # 5 prompts: every step of every path, at once
    for path, score in zip(prefixes, scores):
        if not path:
            assert score == Score(None, "the path has no steps")
            continue
        steps = [expected(prompt_of(p)) for p in path]
        assert score.steps == pytest.approx(steps)
        assert score.value == pytest.approx(aggregate(steps, aggregation))
    assert ctx.ledger.spent.prompt_tokens == sum(map(len, sent))
    assert ctx.ledger.spent.verifier_calls == 3


async def test_prefixes_too_long_are_left_out_of_the_aggregate(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    first = prompt_of("1 + 2 = 3")
    client.max_model_len = len(first)
    verifier = LearnedVerifier(path=write(tmp_path, model), mode="step", aggregation="last")
    scores = await verifier.score(PROBLEM, candidates("1 + 2 = 3\n\nAnswer: 3", "1 + 2 + 0 = 3"), context())
    assert client.submissions == [[first]]
    assert scores[0].steps == (pytest.approx(expected(first)), None)
    assert scores[0].value == pytest.approx(expected(first))  # the last step that has a score
    assert scores[1].value is None and scores[1].steps is None
    assert scores[1].reason == f"the feature prompt is {len(first) + 4} tokens; max_model_len is {len(first)}"


# -- budgets ----------------------------------------------------------------------------------------
async def test_a_budget_without_the_verifier_calls_scores_nothing(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    ctx = context(Budget(verifier_calls=1))
    scores = await LearnedVerifier(path=write(tmp_path, model)).score(
        PROBLEM, candidates("Answer: 3", "Answer: 4"), ctx
    )
    assert [s.value for s in scores] == [None, None]
    assert all(s.reason.startswith("not scored: ") and "verifier_calls" in s.reason for s in scores)
    assert client.submissions == [] and ctx.ledger.spent.prompt_tokens == 0


async def test_a_budget_whose_tokens_run_short_in_step_mode_scores_nothing(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    text = "1 + 2 = 3\n\nAnswer: 3"
    whole = len(prompt_of("1 + 2 = 3")) + len(prompt_of(text))
    verifier = LearnedVerifier(path=write(tmp_path, model), mode="step")
    (score,) = await verifier.score(PROBLEM, candidates(text), context(Budget(total_tokens=whole - 1)))
    assert score.value is None and score.reason.startswith("not scored: ") and score.steps is None
    assert client.submissions == []
    (paid,) = await verifier.score(PROBLEM, candidates(text), context(Budget(total_tokens=whole)))
    assert paid.value is not None  # exactly the prompts' tokens is enough


async def test_a_budget_whose_time_runs_out_mid_call_scores_nothing_but_charges_the_tokens(
    tmp_path: Path, model: Path, client: FakeEmbeddingClient
) -> None:
    client.delay = 5.0
    ctx = context(Budget(seconds=0.2))
    scores = await LearnedVerifier(path=write(tmp_path, model)).score(PROBLEM, candidates("Answer: 3"), ctx)
    assert scores == [Score(None, "not scored: the budget's time ran out")]
    assert ctx.ledger.spent.prompt_tokens == len(prompt_of("Answer: 3"))


# -- the feature prompt -----------------------------------------------------------------------------
def test_the_feature_prompt_opens_the_assistant_turn_after_the_system_and_problem() -> None:
    tokenizer = ChatTokenizer()
    spec = FeatureSpec(system_prompt="Check the work.")
    ids = Embedder(spec, None, tokenizer).prompt(PROBLEM, "1 + 2 = 3\n\nAnswer: 3")  # type: ignore[arg-type]
    chat = "[system]Check the work.<end>[user]What is 1 + 2?<end>[assistant]"
    assert ids == tokenizer.encode(chat) + tokenizer.encode("1 + 2 = 3\n\nAnswer: 3")
    assert ids.count(1001) == 2  # <end> as one special token, after each turn before the path


async def test_embed_keeps_the_order_and_gives_float32_vectors_or_reasons() -> None:
    client = FakeEmbeddingClient(max_model_len=len(prompt_of("Answer: 3")))
    embedder = Embedder(FeatureSpec(), client, ChatTokenizer())  # type: ignore[arg-type]
    vectors = await embedder.embed([(PROBLEM, "Answer: 33"), (PROBLEM, "Answer: 3")], context())
    assert isinstance(vectors[0], str) and "max_model_len" in vectors[0]
    assert vectors[1].dtype == np.float32
    assert vectors[1].tolist() == [len(prompt_of("Answer: 3")), 1.0]  # the problem's '+'
    assert client.submissions == [[prompt_of("Answer: 3")]]
