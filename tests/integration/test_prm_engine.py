"""The PRM verifier on a real pooling engine: the embedded model, converted by vLLM into a
2-class token classifier from its LM-head rows for "No"/"Yes". Its scores mean nothing; what
is checked is the plumbing: separator positions, one score per step, batching, aggregation,
budget, and the vocabulary check before anything is scored."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ponder.backends.pool import EnginePool, engines
from ponder.backends.pooling import PoolingEngine
from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.verifiers.prm import ProcessRewardModel, build_prompt, step_rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

VERIFIER = ProcessRewardModel(aggregation="min")
"""The defaults: separator "\\n\\n", one token (id 1116) in SmolLM2's vocabulary."""

PATHS = [
    "4 + 4 = 8.",
    "First, 3 * 5 = 15.\n\nThen 15 - 2 = 13.\n\nThe answer is 13.",
    "Half of 10 is 5.\n\nDouble 5 is 10.\n\n10 + 1 = 11.\n\nThe answer is \\boxed{11}.",
]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def prm_engine() -> AsyncIterator[PoolingEngine]:
    engine = await engines.pooling(VERIFIER.pooling_settings())
    yield engine
    await engine.close()


def _context(pool: EnginePool | None = None) -> Run:
    return Run(ScriptedBackend.from_script([]), Ledger(Budget()), random.Random(0), pool=pool)


def _candidates(*texts: str) -> list[Candidate]:
    return [
        Candidate(index=i, text=t, num_tokens=0, finish_reason="stop") for i, t in enumerate(texts)
    ]


async def test_every_step_of_every_path_gets_a_probability(prm_engine: PoolingEngine) -> None:
    ctx = _context()
    scores = await VERIFIER.score(Problem(prompt="Solve the three sums."), _candidates(*PATHS), ctx)
    assert await ctx.pool.pooling(VERIFIER.pooling_settings()) is prm_engine  # the pool's one
    assert [len(s.steps or ()) for s in scores] == [1, 3, 4]
    for score in scores:
        assert all(step is not None and 0.0 <= step <= 1.0 for step in score.steps)
        assert score.value == min(score.steps)
    spent = ctx.ledger.spent
    assert spent.prompt_tokens > 0 and spent.verifier_calls == 3
    assert (spent.model_calls, spent.generated_tokens) == (0, 0)


async def test_step_rows_are_the_per_token_rows_at_the_separators(
    prm_engine: PoolingEngine,
) -> None:
    """What STEP pooling returns is what picking the per-token rows at the step positions
    gives, even with a separator token inside the problem."""
    from vllm import PoolingParams
    from vllm.inputs import TokensPrompt

    connection = await VERIFIER.connect(_context())
    problem = Problem(prompt="Add 2 and 3.\n\n")  # "\n\n" before <|im_end|> is id 1116 too
    steps = ["2 + 3 = 5.", "The answer is 5."]
    prompt = build_prompt(
        connection.tokenizer, VERIFIER.messages(problem), steps, connection.separator_id
    )
    assert prompt.token_ids.count(connection.separator_id) > len(steps)

    (pooled,) = await prm_engine.pool([prompt.token_ids], connection.separator_id)
    every_token = PoolingParams(task="token_classify", use_activation=False)
    request = TokensPrompt(prompt_token_ids=prompt.token_ids)
    async for output in prm_engine.engine.encode(request, every_token, "prm-every-token"):
        pass
    per_token = output.outputs.data.tolist()
    assert len(per_token) == len(prompt.token_ids)
    picked = step_rows(per_token, prompt, connection.separator_id)
    stepped = step_rows(pooled.rows, prompt, connection.separator_id)
    assert len(stepped) == len(steps)
    for step_row, token_row in zip(stepped, picked):
        assert step_row == pytest.approx(token_row, abs=1e-4)


async def test_a_separator_not_in_the_vocabulary_fails_before_anything_starts(
    prm_engine: PoolingEngine,
) -> None:
    verifier = ProcessRewardModel(step_separator="<extra_0>", max_model_len=512)
    ctx = _context(EnginePool())
    with pytest.raises(BadRequestError, match="'<extra_0>' is not one token of model 'embedded'"):
        await verifier.score(Problem(prompt="q"), _candidates("a\n\nb"), ctx)
    assert len(ctx.pool) == 0  # no engine was started for it
    assert (ctx.ledger.spent.prompt_tokens, ctx.ledger.spent.verifier_calls) == (0, 0)
