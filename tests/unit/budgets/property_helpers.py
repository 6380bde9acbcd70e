"""Pieces for the budget property tests: an event loop on a virtual clock, a scripted model
whose every reply is a deterministic function of the request, and a scoring verifier that
needs no model.

The virtual clock makes the ``seconds`` limit exact and reproducible: the loop never sleeps,
it jumps to the next timer when nothing is ready, so a scripted token delay or a budget
deadline takes no real time and always falls at the same instant. Ledgers read the same
clock (``Ledger(..., clock=loop.time)``) as ``asyncio.timeout`` and ``asyncio.sleep`` do.
"""

from __future__ import annotations

import asyncio
import selectors
import zlib
from collections.abc import Sequence

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier
from ponder.verifiers.judge_scoring import TOP_LOGPROBS


class _JumpingSelector(selectors.BaseSelector):
    """A real selector (for the loop's self-pipe) that, instead of blocking for ``timeout``,
    moves the loop's virtual clock forward by it."""

    def __init__(self, loop_clock: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = loop_clock

    def register(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):  # type: ignore[no-untyped-def]
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.modify(fileobj, events, data)

    def get_map(self):  # type: ignore[no-untyped-def]
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None):  # type: ignore[no-untyped-def]
        events = self._real.select(0)
        if events:
            return events
        if timeout is None:
            raise RuntimeError(
                "the event loop would wait forever: nothing is ready and no timer is due"
            )
        self._clock.now += max(0.0, timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual and advances only to the next due timer."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


PROBLEM = Problem(prompt="What is 6 times 2?", reference="12")

_WORDS = ("First", "Then", "Wait", "So", "Hmm", "Check")
_ANSWERS = ("12", "13", "12.0")
_DELAYS = (0.0, 0.0005, 0.002, 0.01)
"""Seconds before each token of a sample: chains race, and the clock has work to cut."""


def _hash(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def is_verdict(request: GenerationRequest) -> bool:
    """A judge's one-token verdict or a rating (LLM judge, step judge, speculative rating):
    charged as verifier calls, not model calls."""
    return request.params.logprobs == TOP_LOGPROBS


class ScriptedModel:
    """Replies that depend only on the request (its prompt, seed and sample index) and a
    ``salt``: verdicts are one digit; a prompt ending in an answer cue gets a short answer;
    anything else gets a few blank-line separated steps and then ``Answer: x``, fewer the
    more steps the prompt already holds, so every path ends."""

    def __init__(self, salt: int) -> None:
        self.salt = salt

    def __call__(self, request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        text = "".join(chr(token) for token in request.prompt_token_ids)
        h = _hash(self.salt, request.prompt_token_ids, request.params.seed, sample)
        delay = _DELAYS[h % len(_DELAYS)]
        if is_verdict(request):
            return ScriptedSample(str(h % 10), logprobs=[-0.1 * (h % 4)], delay=delay)
        answer = _ANSWERS[(h >> 3) % len(_ANSWERS)]
        if text.rstrip().endswith("Answer:"):
            reply = f" {answer}" + (" Hmm" if (h >> 5) % 4 == 0 else "")
        else:
            steps_so_far = text.count("\n\n")
            steps = max(0, (h >> 7) % 4 - steps_so_far)
            reply = "".join(
                f"{_WORDS[(h >> (9 + i)) % len(_WORDS)]} 6 times 2 is {answer}.\n\n"
                for i in range(steps)
            ) + f"Answer: {answer}"
        logprob = -0.1 * ((h >> 11) % 7)
        return ScriptedSample(reply, logprobs=[logprob] * len(reply), delay=delay)


def scripted_backend(salt: int) -> ScriptedBackend:
    return ScriptedBackend(ScriptedModel(salt))


class HashScores(Verifier):
    """Scores a text by its hash (no model, but each candidate is a verifier call); one text
    in eight cannot be scored."""

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        scores = []
        for candidate in candidates:
            h = _hash(candidate.text)
            scores.append(Score(None, "unscorable") if h % 8 == 0 else Score((h % 10) / 9))
        return scores
