"""The parts of CoT trimming on their own: thoughts found in a growing text, the probe exit
rule over probes that come back in any order, and the judge queue's batches."""

from __future__ import annotations

import asyncio
import random

import pytest
from pydantic import PrivateAttr

from ponder.backends.scripted import ScriptedBackend
from ponder.budgets import Budget, Ledger
from ponder.core.thinking import ThinkingFormat
from ponder.errors import BackendError
from ponder.runtime import Run
from ponder.strategies.cot_judge import JudgeQueue, ThoughtJudge, ThoughtLog
from ponder.strategies.cot_probe import Probe, ProbeWindow
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Score

PLAIN = ThinkingFormat()


@pytest.mark.parametrize(
    ("text", "thoughts"),
    [
        ("a.\n\nb.\n\nc.", ["a.", "b."]),
        ("a. Wait, b.\n\n", ["a.", "Wait, b."]),
        ("a.\n\nWait, b. Hmm, c.\n\n", ["a.", "Wait, b.", "Hmm, c."]),
        ("a. But wait, b.\n\n", ["a.", "But wait, b."]),
        ("a. Waiting is fine.\n\n", ["a. Waiting is fine."]),
        ("a. wait, b.\n\n", ["a. wait, b."]),
        ("a. Wait", []),
        ("\n\n\n\na.\n\n", ["a."]),
    ],
    ids=["blank-lines", "marker-opens-a-thought", "marker-after-blank-line", "two-word-marker",
         "marker-inside-a-word", "markers-keep-their-case", "marker-not-yet-complete",
         "empty-thoughts-skipped"],
)
def test_thoughts_end_at_blank_lines_and_before_markers(text: str, thoughts: list[str]) -> None:
    assert [t.text for t in ThoughtLog(PLAIN).completed(text)] == thoughts


def test_a_growing_text_gives_each_thought_once_with_where_it_ends() -> None:
    log, text = ThoughtLog(PLAIN), "First.\n\nSecond. Wait, third.\n\nopen"
    found = [t for end in range(len(text) + 1) for t in log.completed(text[:end])]
    assert [(t.index, t.text) for t in found] == [
        (0, "First."), (1, "Second."), (2, "Wait, third.")
    ]
    assert [text[: t.end] for t in found] == ["First.", "First.\n\nSecond.", text[:-6]]


def test_a_leading_think_start_is_not_part_of_the_first_thought() -> None:
    r1 = ThinkingFormat.model_validate("r1")
    thoughts = ThoughtLog(r1).completed("<think>\nOk.\n\nNext.\n\n")
    assert [t.text for t in thoughts] == ["Ok.", "Next."]


def test_repeats_ignore_case_and_spacing() -> None:
    log = ThoughtLog(PLAIN)
    first, second, third = log.completed("It is 4.\n\nit  IS 4.\n\nIt is 5.\n\n")
    assert [log.repeats(first), log.repeats(second), log.repeats(third)] == [False, True, False]


def _probe(step: int, answer: str | None, hedge: bool = False) -> Probe:
    text = f" {answer or ''}" + (" Wait" if hedge else "")
    return Probe.read(step, 10 * step, text, [], "stop", thinking=PLAIN,
                      extractor=AnswerExtractor())


def test_the_window_decides_on_the_earliest_settled_steps_whatever_the_arrival_order() -> None:
    window = ProbeWindow(2)
    assert window.add(_probe(3, "5")) is None
    assert window.add(_probe(1, "4")) is None
    decided = window.add(_probe(2, "5"))  # completes (2, 3); (1, 2) disagree
    assert decided is not None and decided.step == 3


def test_a_hedging_probe_is_not_certain_even_with_an_answer() -> None:
    hedged = _probe(1, "4", hedge=True)
    assert hedged.answer == "4" and not hedged.certain
    assert not _probe(1, None).certain and _probe(1, "4").certain


class _CountingJudge(ThoughtJudge):
    """Answers without a model: one score per prompt, its length, recording each batch."""

    _batches: list[list[str]] = PrivateAttr(default_factory=list)

    async def verdicts(self, prompts: list[str], ctx: Run) -> list[Score]:
        self._batches.append(list(prompts))
        await asyncio.sleep(0)
        if "fail" in prompts:
            raise BackendError("the judge engine failed")
        return [Score(len(p) / 10) for p in prompts]


def _context() -> Run:
    return Run(ScriptedBackend.from_script([]), Ledger(Budget()), random.Random(0))


async def test_questions_asked_in_one_turn_go_out_as_one_batch_and_come_back_in_order() -> None:
    judge = _CountingJudge()
    queue = JudgeQueue(judge, _context())
    first, second = await asyncio.gather(queue.ask(["a", "bb"]), queue.ask(["ccc"]))
    later = await queue.ask(["dddd"])
    assert [s.value for s in first] == [0.1, 0.2] and [s.value for s in second] == [0.3]
    assert [s.value for s in later] == [0.4]
    assert judge._batches == [["a", "bb", "ccc"], ["dddd"]]
    assert (queue.batches, queue.calls) == (2, 4)


async def test_a_failed_batch_fails_every_question_in_it() -> None:
    queue = JudgeQueue(_CountingJudge(), _context())
    results = await asyncio.gather(queue.ask(["fail"]), queue.ask(["x"]), return_exceptions=True)
    assert all(isinstance(r, BackendError) for r in results)


async def test_questions_whose_askers_left_are_not_sent() -> None:
    judge = _CountingJudge()
    queue = JudgeQueue(judge, _context())
    gone = asyncio.create_task(queue.ask(["gone"]))
    await asyncio.sleep(0)  # asked, and the batch is waiting for this turn to end
    gone.cancel()
    kept = await queue.ask(["kept"])
    await queue.drain()
    assert [s.value for s in kept] == [0.4]
    assert judge._batches == [["kept"]]
