"""The PRM verifier without an engine: prompts with separators, scores at the separators,
the vocabulary checks, config validation, budget and batching over a fake pooling client, and
the pooling client taken from the run's pool."""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from pydantic import ValidationError

from ponder.backends.pool import EnginePool
from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.pooling import Pooled, PoolingEngineSettings, PoolingServerSettings
from ponder.core.problem import Message, Problem
from ponder.core.result import Candidate
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.verifiers.base import verifiers
from ponder.verifiers.prm import (
    PrmConnection,
    PrmPrompt,
    ProcessRewardModel,
    build_prompt,
    separator_token_id,
    step_probability,
    step_rows,
)

SEP = "<sep>"
SEP_ID = 1000


class CharTokenizer:
    """One token per character (id = ord), except whole special tokens; a ChatML-like
    template. Enough to pin ids by hand."""

    specials = {SEP: SEP_ID, "<end>": 1001}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            special = next((s for s in self.specials if text.startswith(s, i)), None)
            ids.append(self.specials[special] if special else ord(text[i]))
            i += len(special) if special else 1
        return ids

    def decode(self, ids: list[int]) -> str:
        names = {v: k for k, v in self.specials.items()}
        return "".join(names.get(i) or chr(i) for i in ids)

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool) -> str:
        return "".join(f"[{m['role']}]{m['content']}<end>" for m in messages)

    def get_vocab(self) -> dict[str, int]:
        return {**{chr(i): i for i in range(128)}, **self.specials}


TOKENIZER = CharTokenizer()
MESSAGES = [{"role": "user", "content": "Q"}]


# -- prompts ------------------------------------------------------------------------------------
def test_a_separator_token_follows_every_step() -> None:
    prompt = build_prompt(TOKENIZER, MESSAGES, ["ab", "c"], SEP_ID)
    assert TOKENIZER.decode(prompt.token_ids) == "[user]Q<end>[assistant]ab<sep>c<sep><end>"
    assert [prompt.token_ids[p] for p in prompt.step_positions] == [SEP_ID, SEP_ID]
    assert prompt.step_positions == [21, 23]  # after "[user]Q<end>[assistant]ab" and "c"


def test_only_the_inserted_separators_are_step_positions() -> None:
    messages = [{"role": "user", "content": f"a{SEP}b"}]  # the separator inside the problem
    prompt = build_prompt(TOKENIZER, messages, ["s"], SEP_ID)
    assert prompt.token_ids.count(SEP_ID) == 2
    assert prompt.step_positions == [prompt.token_ids.index(SEP_ID, 10)]


def test_a_template_that_drops_the_assistant_turn_is_refused() -> None:
    class Dropping(CharTokenizer):
        def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool) -> str:
            return "no turns"

    with pytest.raises(BadRequestError, match="assistant turn"):
        build_prompt(Dropping(), MESSAGES, ["s"], SEP_ID)


# -- separator and classes ------------------------------------------------------------------
def test_a_one_token_separator_gives_its_id() -> None:
    assert separator_token_id(TOKENIZER, SEP, "m") == SEP_ID


@pytest.mark.parametrize("separator", ["\n\n", "<sep> ", "<extra_0>"], ids=repr)
def test_a_separator_of_several_tokens_is_refused_naming_it_and_the_model(separator: str) -> None:
    with pytest.raises(BadRequestError, match="is not one token of model 'the-prm'") as info:
        separator_token_id(TOKENIZER, separator, "the-prm")
    assert repr(separator) in str(info.value)


# -- picking rows at the separators ---------------------------------------------------------
PROMPT = PrmPrompt(token_ids=[1, SEP_ID, 2, SEP_ID, 3, SEP_ID], step_positions=[3, 5])
"""Three separator tokens; the first is in the problem, the other two end steps."""


def test_step_pooling_rows_are_matched_to_separators_skipping_the_problems() -> None:
    rows = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]  # one per separator token, in order
    assert step_rows(rows, PROMPT, SEP_ID) == [[1.0, 1.0], [2.0, 2.0]]


def test_per_token_rows_are_picked_at_the_step_positions() -> None:
    rows = [[float(i), 0.0] for i in range(len(PROMPT.token_ids))]
    assert step_rows(rows, PROMPT, SEP_ID) == [[3.0, 0.0], [5.0, 0.0]]


def test_rows_of_neither_shape_are_not_guessed() -> None:
    assert step_rows([[0.0, 1.0]] * 2, PROMPT, SEP_ID) is None


@pytest.mark.parametrize(
    ("logits", "positive_index", "expected"),
    [
        ([0.0, 0.0], 1, 0.5),
        ([0.0, math.log(3)], 1, 0.75),
        ([0.0, math.log(3)], 0, 0.25),
        ([1000.0, 1000.0 + math.log(3)], 1, 0.75),
        ([0.0, 0.0, math.log(2)], 2, 0.5),
        ([0.0], 1, 0.5),
        ([math.log(3)], 0, 0.75),
        ([-1000.0], 1, 0.0),
    ],
    ids=["even", "positive", "negative-class", "large", "three-classes", "one-logit",
         "one-logit-sigmoid", "one-logit-no-overflow"],
)
def test_step_probability(logits: list[float], positive_index: int, expected: float) -> None:
    assert step_probability(logits, positive_index) == pytest.approx(expected)


def test_a_positive_index_beyond_the_classes_is_refused() -> None:
    with pytest.raises(BadRequestError, match="positive_index must be < 2"):
        step_probability([0.0, 1.0], 2)


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "server"}, "base_url is required"),
        ({"base_url": "http://h:8000"}, "base_url is for kind 'server'"),
        ({"kind": "server", "base_url": "h:8000"}, "must start with http"),
        ({"kind": "server", "base_url": "http://h:8000/v1"}, "server root"),
        ({"classifier_tokens": ["Yes", "Yes"]}, "two distinct tokens"),
        ({"classifier_tokens": ["", "Yes"]}, "two distinct tokens"),
        ({"positive_index": 2}, "0 or 1 with two tokens"),
        ({"positive_index": -1}, "greater than or equal to 0"),
        ({"step_separator": ""}, "at least 1 character"),
        ({"max_model_len": 8}, "greater than or equal to 16"),
        ({"kind": "remote"}, "'in_process' or 'server'"),
        ({"steps": 3}, "Extra inputs are not permitted"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value),
)
def test_invalid_configs_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProcessRewardModel(**fields)


def test_a_real_prm_config_is_valid() -> None:
    config = ProcessRewardModel(
        model="Qwen/Qwen2.5-Math-PRM-7B", step_separator="<extra_0>", classifier_tokens=None,
        positive_index=1, aggregation="min",
    )
    assert config.classifier_tokens is None


def test_the_config_file_builds_the_default_verifier() -> None:
    path = Path(__file__).parents[3] / "configs" / "verifier" / "prm.yaml"
    fields = OmegaConf.to_container(OmegaConf.load(path))
    assert verifiers.build(fields) == ProcessRewardModel()
    assert fields == {"name": "prm", **ProcessRewardModel().model_dump(mode="json")}


def test_the_prm_sees_its_system_turn_and_the_last_user_turn() -> None:
    problem = Problem(messages=(
        Message(role="system", content="generator's"),
        Message(role="user", content="first"),
        Message(role="assistant", content="..."),
        Message(role="user", content="second"),
    ))
    verifier = ProcessRewardModel(system_prompt="S")
    assert verifier.messages(problem) == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "second"}
    ]
    assert ProcessRewardModel(system_prompt=None).messages(Problem(prompt="q")) == [
        {"role": "user", "content": "q"}
    ]


# -- scoring over a fake pooling client -------------------------------------------------------
class FakeClient:
    """Returns, per prompt, one row per separator token whose positive logit is the number of
    steps before it, so the probabilities are known; records every submission."""

    def __init__(self) -> None:
        self.max_model_len = 4096
        self.extra_rows = 0
        """Rows beyond one per separator, as from a server pooling at another token."""
        self.delay = 0.0
        self.submissions: list[list[list[int]]] = []

    async def pool(self, prompts: list[list[int]], separator_id: int) -> list[Pooled]:
        self.submissions.append(prompts)
        await asyncio.sleep(self.delay)
        return [
            Pooled(
                [[0.0, float(k)] for k in range(ids.count(separator_id) + self.extra_rows)],
                len(ids),
            )
            for ids in prompts
        ]


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()

    async def connect(self: ProcessRewardModel, ctx: Run) -> PrmConnection:
        return PrmConnection(fake, TOKENIZER, separator_token_id(TOKENIZER, SEP, self.model))

    monkeypatch.setattr(ProcessRewardModel, "connect", connect)
    return fake


def _context(budget: Budget | None = None) -> Run:
    return Run(ScriptedBackend.from_script([]), Ledger(budget or Budget()), random.Random(0))


def _candidates(*texts: str) -> list[Candidate]:
    return [
        Candidate(index=i, text=t, num_tokens=len(t), finish_reason="stop")
        for i, t in enumerate(texts)
    ]


async def test_all_paths_go_in_one_submission_with_a_score_per_step(client: FakeClient) -> None:
    verifier, ctx = ProcessRewardModel(step_separator=SEP, aggregation="min"), _context()
    scores = await verifier.score(Problem(prompt="q"), _candidates("a\n\nb\n\nc", "d", ""), ctx)
    assert len(client.submissions) == 1 and len(client.submissions[0]) == 2
    assert scores[0].steps == pytest.approx((0.5, _sigmoid(1), _sigmoid(2)))
    assert scores[0].value == pytest.approx(0.5)  # min
    assert scores[1].steps == (0.5,)
    assert (scores[2].value, scores[2].reason) == (None, "the path has no steps")
    spent = ctx.ledger.spent
    assert spent.prompt_tokens == sum(len(ids) for ids in client.submissions[0])
    assert (spent.verifier_calls, spent.model_calls, spent.generated_tokens) == (3, 0, 0)


async def test_the_aggregation_is_the_configured_one(client: FakeClient) -> None:
    problem, text = Problem(prompt="q"), _candidates("a\n\nb\n\nc")
    last = await ProcessRewardModel(step_separator=SEP).score(problem, text, _context())
    mean_verifier = ProcessRewardModel(step_separator=SEP, aggregation="mean")
    mean = await mean_verifier.score(problem, text, _context())
    assert last[0].value == pytest.approx(_sigmoid(2))
    assert mean[0].value == pytest.approx((0.5 + _sigmoid(1) + _sigmoid(2)) / 3)


async def test_a_path_longer_than_max_model_len_is_not_scored_or_sent(client: FakeClient) -> None:
    client.max_model_len = 40
    verifier = ProcessRewardModel(step_separator=SEP, system_prompt=None)
    candidates = _candidates("short", "long " * 20)
    scores = await verifier.score(Problem(prompt="q"), candidates, _context())
    assert scores[0].value is not None
    assert scores[1].value is None and "max_model_len is 40" in scores[1].reason
    assert len(client.submissions[0]) == 1


async def test_prompt_tokens_beyond_the_budget_are_not_sent(client: FakeClient) -> None:
    ctx = _context(Budget(total_tokens=20))
    verifier = ProcessRewardModel(step_separator=SEP)
    scores = await verifier.score(Problem(prompt="q"), _candidates("a"), ctx)
    assert scores[0].value is None and scores[0].reason.startswith("not scored: total_tokens")
    assert client.submissions == []
    assert ctx.ledger.spent.prompt_tokens == 0


async def test_the_budgets_deadline_cuts_scoring_and_the_tokens_sent_are_charged(
    client: FakeClient,
) -> None:
    client.delay = 1.0
    ctx = _context(Budget(seconds=0.05))
    verifier = ProcessRewardModel(step_separator=SEP)
    scores = await verifier.score(Problem(prompt="q"), _candidates("a"), ctx)
    assert (scores[0].value, scores[0].reason) == (None, "not scored: the budget's time ran out")
    assert ctx.ledger.spent.prompt_tokens == len(client.submissions[0][0])


async def test_rows_that_do_not_fit_the_separators_give_no_score(client: FakeClient) -> None:
    client.extra_rows = 1
    verifier = ProcessRewardModel(step_separator=SEP)
    scores = await verifier.score(Problem(prompt="q"), _candidates("a\n\nb"), _context())
    assert scores[0].value is None
    assert "step_tag_id must be the separator's token id 1000" in scores[0].reason


def test_the_module_registers_prm() -> None:
    assert verifiers.get("prm") is ProcessRewardModel


# -- the pooling client comes from the run's pool -------------------------------------------
class PooledClient(FakeClient):
    def __init__(self) -> None:
        super().__init__()
        self.alive = True

    async def close(self) -> None:
        self.alive = False


@pytest.mark.parametrize(
    ("fields", "settings"),
    [
        ({"classifier_tokens": ("N", "Y")}, PoolingEngineSettings("MODEL", ("N", "Y"), 4096, 0.1)),
        ({"kind": "server", "base_url": "http://prm:8000", "classifier_tokens": None},
         PoolingServerSettings("http://prm:8000", 4096)),
    ],
    ids=["in-process", "server"],
)
async def test_every_scoring_uses_the_pools_one_client_for_its_settings(
    monkeypatch: pytest.MonkeyPatch, fields: dict, settings: object
) -> None:
    opened: list[tuple[object, PooledClient]] = []

    async def open_pooling(wanted: object) -> PooledClient:
        opened.append((wanted, PooledClient()))
        return opened[-1][1]

    monkeypatch.setattr("ponder.backends.pool.open_pooling", open_pooling)
    monkeypatch.setattr("ponder.verifiers.prm.resolve_model", lambda model: "MODEL")
    monkeypatch.setattr("ponder.verifiers.prm.load_tokenizer", lambda path: TOKENIZER)
    pool = EnginePool()
    verifier = ProcessRewardModel(step_separator=SEP, **fields)
    for text in ("a", "b", "c"):
        ctx = Run(ScriptedBackend.from_script([]), Ledger(Budget()), random.Random(0), pool=pool)
        (score,) = await verifier.score(Problem(prompt="q"), _candidates(text), ctx)
        assert score.value is not None
    assert [wanted for wanted, _ in opened] == [settings]
    assert len(opened[0][1].submissions) == 3
    await pool.close()
    assert not opened[0][1].alive
