"""A process reward model (PRM) on vLLM's pooling runner: one score per step from one forward
pass over the whole solution.

A PRM such as Qwen/Qwen2.5-Math-PRM-7B reads the chat (system prompt, the problem, then the
steps as the assistant turn, each step followed by a separator token such as ``<extra_0>``)
and classifies the token at every separator: softmax over its classes, ``positive_index``
being "this step is correct". vLLM serves this as the ``token_classify`` task with STEP
pooling: ``PoolingParams(step_tag_id=...)`` keeps only the rows at the separator token.

The prompt is assembled from token ids, one separator id inserted after each step, because
tokenizing the joined text can merge a separator with its neighbours ("\\n\\n" before a word
becomes two "\\n" tokens in SmolLM2's BPE) and the step would then have no score.

A causal LM without a PRM head (the embedded model) gets one through vLLM's online
conversion to a classifier (``convert="classify"``, ``method="no_post_processing"``): the
LM-head rows of ``classifier_tokens`` become a 2-class head, so a step's score is
P(positive token) / P(both tokens) as the next token after its separator. For the embedded
model that number says nothing about correctness; it is there so the plumbing (separator
positions, batching, budget, aggregation) runs end to end on a machine with no hub.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from ponder.core.pooling import (
    Pooled,
    PoolingClient,
    PoolingEngineSettings,
    PoolingServerSettings,
    PoolingSettings,
)
from ponder.core.problem import Problem
from ponder.errors import BadRequestError, BudgetExhaustedError
from ponder.models.registry import resolve_model
from ponder.runtime import Run
from ponder.verifiers.base import Score, pool_within_budget, verifiers
from ponder.verifiers.process import ProcessVerifier

QWEN_PRM_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system turn Qwen2.5-Math-PRM was trained with."""

_STEPS_PLACEHOLDER = "\x00ponder-prm-steps\x00"
"""Stands in for the assistant turn while the chat template renders, so the steps can be
tokenized piece by piece around it."""


# -- prompt and scores (pure) --------------------------------------------------------------
def separator_token_id(tokenizer: Any, separator: str, model: str) -> int:
    """The id of ``separator``, which must be exactly one token of the model's vocabulary."""
    ids = tokenizer.encode(separator, add_special_tokens=False)
    if len(ids) != 1 or tokenizer.decode(ids) != separator:
        raise BadRequestError(
            f"step_separator {separator!r} is not one token of model {model!r} (it encodes "
            f"as {len(ids)} tokens {ids}); choose a string the PRM has a single token for"
        )
    return ids[0]


@dataclass(frozen=True)
class PrmPrompt:
    token_ids: list[int]
    step_positions: list[int]
    """Where this prompt's step separators are, one per step, in order."""


def build_prompt(
    tokenizer: Any, messages: list[dict[str, str]], steps: Sequence[str], separator_id: int
) -> PrmPrompt:
    """The chat with ``steps`` as the assistant turn, a separator token after each step."""
    turns = [*messages, {"role": "assistant", "content": _STEPS_PLACEHOLDER}]
    text = tokenizer.apply_chat_template(turns, tokenize=False)
    before, placeholders, after = text.partition(_STEPS_PLACEHOLDER)
    if not placeholders or _STEPS_PLACEHOLDER in after:
        raise BadRequestError("the PRM's chat template does not render the assistant turn as given")
    ids = tokenizer.encode(before, add_special_tokens=False)
    positions = []
    for step in steps:
        ids += tokenizer.encode(step, add_special_tokens=False)
        positions.append(len(ids))
        ids.append(separator_id)
    ids += tokenizer.encode(after, add_special_tokens=False)
    return PrmPrompt(ids, positions)


def step_rows(
    rows: Sequence[Sequence[float]], prompt: PrmPrompt, separator_id: int
) -> list[Sequence[float]] | None:
    """The pooler's rows at the prompt's step separators; None when ``rows`` fit neither shape.

    vLLM returns one row per separator token (STEP pooling, how PRMs are served) or one per
    token (ALL pooling). Separator tokens elsewhere in the prompt (say, in the problem) have
    rows too; they are skipped.
    """
    if len(rows) == len(prompt.token_ids):
        return [rows[position] for position in prompt.step_positions]
    tagged = [i for i, token in enumerate(prompt.token_ids) if token == separator_id]
    if len(rows) != len(tagged):
        return None
    row_of = {position: row for position, row in zip(tagged, rows)}
    return [row_of[position] for position in prompt.step_positions]


def step_probability(logits: Sequence[float], positive_index: int) -> float:
    """softmax(logits)[positive_index] for a head of two or more classes; the sigmoid of the
    logit for a one-logit head (a reward head, where higher means better)."""
    if len(logits) == 1:
        return 0.5 * (1.0 + math.tanh(logits[0] / 2))  # the sigmoid, without overflow
    if positive_index >= len(logits):
        raise BadRequestError(
            f"positive_index must be < {len(logits)} (the PRM's classes), got {positive_index}"
        )
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    return weights[positive_index] / sum(weights)


# -- the connection ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PrmConnection:
    client: PoolingClient
    tokenizer: Any
    """The PRM's tokenizer: prompts are built here, as token ids."""
    separator_id: int


@functools.lru_cache(maxsize=None)
def load_tokenizer(model_path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


# -- the verifier -----------------------------------------------------------------------------
@verifiers.register("prm")
class ProcessRewardModel(ProcessVerifier):
    """Scores every step of every path with a PRM, all paths in one engine submission."""

    model: str = Field(
        "embedded",
        description="The PRM: 'embedded', a local HF folder, or a hub name. With a server, the "
        "model it serves (its tokenizer builds the prompts here).",
    )
    kind: Literal["in_process", "server"] = Field(
        "in_process",
        description="in_process: a pooling engine in this process, reused by every verifier "
        "with the same engine settings; server: a vLLM server's /pooling endpoint.",
    )
    base_url: str | None = Field(
        None, description="Server only: its root URL, e.g. http://localhost:8000 (not .../v1)."
    )
    step_separator: str = Field(
        "\n\n",
        min_length=1,
        description="Put after every step; must be one token of the PRM's vocabulary "
        "('<extra_0>' for Qwen2.5-Math-PRM).",
    )
    positive_index: int = Field(
        1, ge=0, description="The class of the PRM's head that means 'this step is correct'."
    )
    classifier_tokens: tuple[str, str] | None = Field(
        ("No", "Yes"),
        description="In-process, for a causal LM without a PRM head (the embedded model): two "
        "vocabulary entries (negative, positive) whose LM-head rows become a 2-class head. "
        "None for a model with its own PRM head.",
    )
    system_prompt: str | None = Field(
        QWEN_PRM_SYSTEM_PROMPT, description="The system turn the PRM was trained with (None: none)."
    )
    max_model_len: int = Field(
        4096,
        ge=16,
        description="Longest prompt (problem and steps) scored; longer paths get no score. "
        "In-process, also the engine's context length.",
    )
    gpu_memory_utilization: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="In-process on a GPU: this engine's share of GPU memory, beside the "
        "generator's engine (whose own share must leave room for it).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ProcessRewardModel:
        url = self.base_url
        if self.kind == "in_process" and url is not None:
            raise ValueError(f"base_url is for kind 'server', not 'in_process'; got {url!r}")
        if self.kind == "server":
            if url is None:
                raise ValueError("base_url is required when kind is 'server'")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
            if url.rstrip("/").endswith("/v1"):
                raise ValueError(f"base_url is the server root, not .../v1; got {url!r}")
        tokens = self.classifier_tokens
        if tokens is not None:
            if not all(tokens) or tokens[0] == tokens[1]:
                raise ValueError(f"classifier_tokens must be two distinct tokens, got {tokens}")
            if self.positive_index > 1:
                index = self.positive_index
                raise ValueError(f"positive_index must be 0 or 1 with two tokens, got {index}")
        return self

    def pooling_settings(self) -> PoolingSettings:
        """What the engine pool builds the pooling client from: one per settings."""
        if self.kind == "server":
            return PoolingServerSettings(self.base_url or "", self.max_model_len)
        return PoolingEngineSettings(
            resolve_model(self.model),
            self.classifier_tokens,
            self.max_model_len,
            self.gpu_memory_utilization,
        )

    async def connect(self, ctx: Run) -> PrmConnection:
        """The pooling client from the run's pool (an engine started on first use, or a
        server's client), after checking the separator and the classifier tokens against the
        PRM's vocabulary, so a bad one fails before any start."""
        tokenizer = load_tokenizer(resolve_model(self.model))
        separator_id = separator_token_id(tokenizer, self.step_separator, self.model)
        if self.kind == "in_process":
            vocabulary = tokenizer.get_vocab()
            for token in self.classifier_tokens or ():
                if token not in vocabulary:
                    raise BadRequestError(
                        f"classifier_tokens: {token!r} is not in the vocabulary of model "
                        f"{self.model!r} (byte-level BPE spells ' Yes' as 'ĠYes')"
                    )
        client = await ctx.pool.pooling(self.pooling_settings())
        return PrmConnection(client, tokenizer, separator_id)

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """The chat before the steps: the PRM's system turn and the problem's last user turn
        (a system turn meant for the generator is not what the PRM was trained on)."""
        question = problem.prompt
        if question is None:
            question = next(m.content for m in reversed(problem.messages or ()) if m.role == "user")
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": question}]

    async def _score_steps(
        self, problem: Problem, paths: list[list[str]], ctx: Run
    ) -> list[list[float | None] | Score]:
        connection = await self.connect(ctx)
        limit, separator_id = connection.client.max_model_len, connection.separator_id
        messages = self.messages(problem)
        prompts = [build_prompt(connection.tokenizer, messages, s, separator_id) for s in paths]
        sent = [p for s, p in zip(paths, prompts) if s and len(p.token_ids) <= limit]
        try:
            pooled = iter(await pool_within_budget(
                ctx, connection.client, [p.token_ids for p in sent], connection.separator_id
            ))
        except BudgetExhaustedError as exc:
            return [Score(None, f"not scored: {exc}")] * len(paths)
        except TimeoutError:
            return [Score(None, "not scored: the budget's time ran out")] * len(paths)
        results: list[list[float | None] | Score] = []
        for steps, prompt in zip(paths, prompts):
            if not steps:
                results.append(Score(None, "the path has no steps"))
            elif len(prompt.token_ids) > limit:
                size = len(prompt.token_ids)
                reason = f"the PRM prompt is {size} tokens; max_model_len is {limit}"
                results.append(Score(None, reason))
            else:
                results.append(self._step_scores(next(pooled), prompt, separator_id))
        return results

    def _step_scores(
        self, pooled: Pooled, prompt: PrmPrompt, separator_id: int
    ) -> list[float | None] | Score:
        rows = step_rows(pooled.rows, prompt, separator_id)
        if rows is None:
            return Score(
                None,
                f"the PRM returned {len(pooled.rows)} rows for {len(prompt.step_positions)} "
                f"steps in {len(prompt.token_ids)} tokens; its step_tag_id must be the "
                f"separator's token id {separator_id}",
            )
        return [step_probability(row, self.positive_index) for row in rows]
