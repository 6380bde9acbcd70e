"""Program-of-thought chains: the prompt, running programs for their answers, every way a
program can fail to give one, and CoT-PoT agreement scores."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Message, Problem
from ponder.core.result import Candidate, Execution
from ponder.runtime import Run
from ponder.strategies import BestOfN, SelfConsistency
from ponder.verifiers.base import verifiers
from ponder.verifiers.cot_pot import CoTPoT, agreement_scores
from ponder.verifiers.programs import ProgramFormat, WorkedExample, printed_answer
from ponder.verifiers.sandbox import Sandbox

QUICK = ProgramFormat(sandbox=Sandbox(timeout_s=1.0, memory_mb=128, max_output_bytes=1024))


@pytest.fixture(autouse=True)
def sandbox_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sandboxes go in a directory of their own, which must be empty after every test."""
    root = tmp_path / "sandboxes"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    assert list(root.iterdir()) == [], "a sandbox directory was left behind"


def _run(backend: ScriptedBackend | None = None, budget: Budget | None = None) -> Run:
    return Run(backend=backend or ScriptedBackend.from_script([]),
               ledger=Ledger(budget or Budget()), rng=random.Random(0))


def _chain(text: str, index: int = 0, answer: str | None = None) -> Candidate:
    return Candidate(index=index, text=text, num_tokens=len(text), finish_reason="stop",
                     answer=answer)


@pytest.mark.parametrize(
    ("text", "answer", "error"),
    [
        ("```python\nprint(6 * 7)\n```", "42", None),
        ("```python\nprint(6 * 7)", "42", None),  # the stop string ate the closing fence
        ("print(2 + 3)", "5", None),  # a bare program
        ("```python\nprint('steps')\nprint(12.0)", "12.0", None),  # the last line is the answer
        ("```python\nprint('Answer: 12 apples')", "12", None),
        ("```python\nx = 6 * 7", None, "the program printed nothing"),
        ("```python\nprint(1 / 0)", None, "program failed: ZeroDivisionError: division by zero"),
        ("```python\nprint(6 *", None, "program failed: SyntaxError"),
        ("```python\nwhile True:\n    pass", None, "timed out after 1.0 s while running the program"),
        ("```python\nwhile True:\n    print(1)", None, "output limit exceeded (1024 bytes)"),
        ("```python\nblock = bytearray(512 * 2**20)\nprint(1)", None, "program failed: MemoryError"),
        ("   ", None, "no program found"),
    ],
    ids=["fenced", "unclosed", "bare", "last-line", "answer-in-words", "no-print", "crash",
         "syntax-error", "loop", "print-loop", "memory", "blank"],
)
async def test_a_program_chain_answers_with_what_it_prints(
    text: str, answer: str | None, error: str | None
) -> None:
    chain = _chain(text, answer="stale")
    await QUICK.answer([chain], _run())
    assert chain.answer == answer
    assert chain.program is not None
    if error is None:
        assert chain.program.error is None
    else:
        assert chain.program.error is not None and error in chain.program.error


async def test_a_failing_program_leaves_the_others_answered() -> None:
    chains = [_chain("print(1 / 0)", 0), _chain("print(7)", 1),
              _chain("print(open('/etc/passwd').read())", 2)]  # not in the sandbox
    await QUICK.answer(chains, _run())
    assert [c.answer for c in chains] == [None, "7", None]
    assert "program failed: FileNotFoundError" in (chains[2].program.error or "")


def test_printed_answer_needs_a_clean_run() -> None:
    assert printed_answer(Execution("print(1)", "1\n", None)) == "1"
    assert printed_answer(Execution("x", "1\n", "program failed: NameError")) is None


def test_the_prompt_shows_the_worked_examples_before_the_question() -> None:
    fmt = ProgramFormat(examples=(WorkedExample(question="What is 1 + 1?", program="print(1 + 1)"),))
    plain = fmt.problem(Problem(prompt="What is 2 + 2?", reference="4"))
    assert [(m.role, m.content) for m in plain.messages or ()] == [
        ("user", "What is 1 + 1?"), ("assistant", "```python\nprint(1 + 1)\n```"),
        ("user", "What is 2 + 2?"),
    ]
    assert plain.reference == "4"
    chat = fmt.problem(Problem(messages=(Message(role="system", content="Be brief."),
                                         Message(role="user", content="What is 2 + 2?"))))
    assert [m.role for m in chat.messages or ()] == ["system", "user", "assistant", "user"]


def test_bad_program_settings_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="mixed_share"):
        ProgramFormat(mixed_share=1.0)
    with pytest.raises(ValidationError, match="format"):
        SelfConsistency(format="code")
    with pytest.raises(ValidationError, match="applies to this strategy's own chains"):
        SelfConsistency(format="program", sampler="short_mk")


@pytest.mark.parametrize(
    ("answers", "programs", "expected"),
    [
        (["12", "12.0", "7"], ["12", "12", "7", "7"], [0.5, 0.5, 0.5]),
        (["12", "7"], ["12", "12", "12", "7"], [0.75, 0.25]),
        (["12", "7"], ["12", "9"], [2 / 3, 0.0]),  # 9: no chain reached it, half weight
        (["12", None], ["12", None], [1.0, None]),
        (["12", "7"], [None, None], [None, None]),
    ],
    ids=["equivalent-forms", "share-of-programs", "unsupported-program-weighs-less",
         "no-answer-no-score", "no-program-answered"],
)
def test_agreement_scores(
    answers: list[str | None], programs: list[str | None], expected: list[float | None]
) -> None:
    assert agreement_scores(answers, programs, 0.5) == pytest.approx(expected)


def _program_or_words(words: list[str], programs: list[str]) -> ScriptedBackend:
    """Program samples for a prompt that shows worked programs, word chains otherwise."""

    def handler(request: GenerationRequest, index: int, call: int) -> ScriptedSample:
        prompt = "".join(map(chr, request.prompt_token_ids))
        return ScriptedSample((programs if "```python" in prompt else words)[index])

    return ScriptedBackend(handler)


async def test_cot_pot_ranks_the_chain_that_programs_agree_with() -> None:
    backend = _program_or_words(
        words=["Answer: 41", "Answer: 41", "Answer: 42"],
        programs=["```python\nprint(40 + 2)\n```", "print(42)", "print(1 / 0)", "print(41 + 1)"],
    )
    strategy = BestOfN(n=3, verifier=CoTPoT(programs=4, program=QUICK))
    result = await strategy.run(Problem(prompt="What is 40 + 2?"), _run(backend))
    assert result.answer == "42"
    assert [c.score for c in result.candidates] == [0.0, 0.0, 1.0]
    assert result.candidates[2].score_reason == "3/4 programs printed an answer"
    assert result.usage.verifier_calls == 2  # one per distinct chain: the cache has the repeat
    assert result.usage.model_calls == 1  # the programs' request counts as the verifier's


async def test_cot_pot_falls_back_to_agreement_among_the_chains() -> None:
    backend = _program_or_words(words=["Answer: 41", "Answer: 41", "Answer: 42"],
                                programs=["print(1 / 0)"] * 2)
    strategy = BestOfN(n=3, verifier=CoTPoT(programs=2, program=QUICK))
    result = await strategy.run(Problem(prompt="What is 40 + 2?"), _run(backend))
    assert result.answer == "41"
    assert "scored by agreement among the candidates" in (result.candidates[0].score_reason or "")


def test_cot_pot_is_registered() -> None:
    assert verifiers.get("cot_pot") is CoTPoT


async def test_a_mixed_pool_votes_words_and_programs_together() -> None:
    backend = _program_or_words(words=["Answer: 41", "Answer: 41", "Answer: 42"],
                                programs=["print(42)", "print(6 * 7)", "print(40 + 2)"])
    strategy = SelfConsistency(n=6, format="mixed", program=QUICK)
    result = await strategy.run(Problem(prompt="What is 40 + 2?"), _run(backend))
    assert [c.answer for c in result.candidates] == ["41", "41", "42", "42", "42", "42"]
    assert [c.index for c in result.candidates] == list(range(6))
    assert [c.program is not None for c in result.candidates] == [False] * 3 + [True] * 3
    assert result.answer == "42" and result.details["votes"] == {"41": 2, "42": 4}
    assert result.usage.model_calls == 2


async def test_program_chains_stop_where_the_code_block_closes() -> None:
    backend = _program_or_words(words=[], programs=["```python\nprint(5)\n```\nSo it is 6."])
    result = await SelfConsistency(n=1, format="program", program=QUICK).run(
        Problem(prompt="What is 2 + 3?"), _run(backend))
    assert result.answer == "5"
    assert result.candidates[0].text == "```python\nprint(5)"
