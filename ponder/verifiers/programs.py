"""Program-of-thought chains: the model writes a short Python program, the sandbox runs it, and
what it prints is the chain's answer.

Arithmetic is where a small model's words go wrong and its programs do not: it copies the
numbers into an expression reliably, and Python does the sum. So a program chain's answer
comes from execution, not from the model's claim about what its reasoning gives.

The prompt is a system turn and a few worked examples as earlier chat turns (a question, then
the program as the assistant's reply): the embedded model writes a runnable program far more
often when it has been shown one than when it is only told to (see the README's measured
figures). Generation stops where the code block closes, so a chain is the program and nothing
after it.

A program that prints nothing, crashes, loops past the time limit or runs out of memory gives
its chain no answer, with the reason on the candidate; it never stops the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from ponder.core.problem import Message, Problem
from ponder.core.result import Candidate, Execution
from ponder.runtime import Run
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.sandbox import Sandbox, SandboxRun, extract_program

PROGRAM_SYSTEM_PROMPT = (
    "Solve the problem by writing a short Python program that prints the answer. "
    "Reply with the program only, in a ```python block."
)


class WorkedExample(BaseModel):
    """One earlier chat turn pair: a question and the program that answers it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(min_length=1)
    program: str = Field(min_length=1, description="The program, without the code fence.")


DEFAULT_EXAMPLES = (
    WorkedExample(question="What is 23 + 9 * 4?", program="print(23 + 9 * 4)"),
    WorkedExample(question="What is (61 - 18 + 7) * 3?", program="print((61 - 18 + 7) * 3)"),
    WorkedExample(
        question="Tom has 5 boxes with 12 pencils in each. He gives away 17 pencils. "
        "How many pencils does he have left?",
        program="boxes = 5\npencils_per_box = 12\ngiven_away = 17\n"
        "left = boxes * pencils_per_box - given_away\nprint(left)",
    ),
    WorkedExample(question="What is 85 - (12 + 30) / 6?", program="print(85 - (12 + 30) / 6)"),
    WorkedExample(
        question="A baker makes 48 rolls and puts them in bags of 6. She sells 5 bags. "
        "How many bags are left?",
        program="rolls = 48\nrolls_per_bag = 6\nbags = rolls // rolls_per_bag\nsold = 5\n"
        "bags_left = bags - sold\nprint(bags_left)",
    ),
    WorkedExample(
        question="Sam saves $7 a week for 6 weeks and then spends $15 on a book. "
        "How many dollars does he have now?",
        program="saved_per_week = 7\nweeks = 6\nbook = 15\n"
        "money = saved_per_week * weeks - book\nprint(money)",
    ),
)
"""Chosen by measurement on the embedded model (20 arithmetic problems of difficulty 3 and 20
word problems, 8 program chains each): with these six, 75% of arithmetic programs and 46% of
word-problem programs ran and printed a value, against 66% and 41% with the first and third
alone. None of them is one of the shipped problems."""

_OUTPUT_ANSWER = AnswerExtractor(methods=("boxed", "answer_line", "last_number"))
"""How a printed line becomes an answer when it is more than a bare value ("Answer: 12",
"12 apples")."""


class ProgramFormat(BaseModel):
    """How program chains are asked for and run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str = Field(PROGRAM_SYSTEM_PROMPT, min_length=1)
    examples: tuple[WorkedExample, ...] = Field(
        DEFAULT_EXAMPLES, description="Worked examples shown before the question, in order."
    )
    stop: tuple[str, ...] = Field(
        ("\n```",), description="Strings that end a program chain (the closing code fence)."
    )
    mixed_share: float = Field(
        0.5, gt=0.0, lt=1.0,
        description="With chain format 'mixed': the share of the chains written as programs.",
    )
    sandbox: Sandbox = Field(
        Sandbox(timeout_s=5.0, memory_mb=512, max_output_bytes=16 * 1024),
        description="Limits of each program's run.",
    )

    def problem(self, problem: Problem) -> Problem:
        """``problem`` with the worked examples as earlier turns, ready to render with
        ``system_prompt``."""
        shown: list[Message] = []
        for example in self.examples:
            shown += [Message(role="user", content=example.question),
                      Message(role="assistant", content=f"```python\n{example.program}\n```")]
        turns = list(problem.messages or [Message(role="user", content=problem.prompt or "")])
        system = [t for t in turns[:1] if t.role == "system"]
        return problem.model_copy(update={
            "prompt": None, "messages": (*system, *shown, *turns[len(system):]),
        })

    async def answer(self, candidates: Sequence[Candidate], ctx: Run) -> None:
        """Run every candidate's program and set its ``answer`` (None with the reason when
        the program gives none) and ``program``. Runs within the run's deadline."""
        programs = [extract_program(c.text) for c in candidates]
        found = [p for p in programs if p is not None]
        runs = iter(await self.sandbox.run_all(
            found, as_main=True, timeout_s=ctx.ledger.seconds_left()))
        for candidate, program in zip(candidates, programs):
            if program is None:
                candidate.answer = None
                candidate.program = Execution(code=None, output="", error="no program found")
                continue
            run = next(runs)
            execution = (_execution(program, run) if isinstance(run, SandboxRun)
                         else Execution(code=program, output="", error=run))
            candidate.answer, candidate.program = printed_answer(execution), execution


def _execution(program: str, run: SandboxRun) -> Execution:
    error = run.failure() or run.stopped
    if error is None and not run.stdout.strip():
        error = "the program printed nothing"
    return Execution(code=program, output=run.stdout, error=error)


def printed_answer(execution: Execution) -> str | None:
    """The answer in a program's output: its last printed line, or the answer in that line
    when it is more than a value. None when the program failed or printed nothing."""
    if execution.error is not None:
        return None
    last = execution.output.strip().splitlines()[-1].strip()
    if len(last.split()) == 1:
        return last
    return _OUTPUT_ANSWER.extract(last) or last
