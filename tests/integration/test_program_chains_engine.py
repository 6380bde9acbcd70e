"""Program-of-thought chains on the real engine with the embedded model: programs written,
run in the sandbox, voted on; CoT-PoT scoring the word chains by them."""

from __future__ import annotations

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.strategies import BestOfN, SamplingConfig, SelfConsistency
from ponder.verifiers import CoTPoT, grade

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

QUESTIONS = [("What is 17 + 25?", "42"), ("What is 9 * 7?", "63"), ("What is 100 - 37?", "63")]


async def test_self_consistency_over_programs_answers_arithmetic(engine: VllmBackend) -> None:
    strategy = SelfConsistency(n=8, format="program", sampling=SamplingConfig(max_tokens=96))
    right = 0
    for question, reference in QUESTIONS:
        result = await asolve(question, strategy=strategy, backend=engine)
        assert all(c.program is not None for c in result.candidates)
        answered = [c for c in result.candidates if c.answer is not None]
        assert answered, [c.program.error for c in result.candidates if c.program]
        for candidate in answered:  # an answer is exactly what its program printed
            assert candidate.program.error is None
            assert candidate.answer in candidate.program.output
        right += grade(result.answer, reference) == "correct"
    assert right >= 2  # the programs copy the sum; Python does it


async def test_cot_pot_scores_word_chains_by_executed_programs(engine: VllmBackend) -> None:
    strategy = BestOfN(n=4, verifier=CoTPoT(programs=4), sampling=SamplingConfig(max_tokens=96))
    result = await asolve("What is 17 + 25?", strategy=strategy, backend=engine)
    scored = [c for c in result.candidates if c.score is not None]
    assert scored
    assert all(0.0 <= c.score <= 1.0 for c in scored)
    assert all("programs printed an answer" in (c.score_reason or "") for c in scored)
    assert result.usage.verifier_calls == len({c.text for c in result.candidates})
    assert result.usage.model_calls == 1
