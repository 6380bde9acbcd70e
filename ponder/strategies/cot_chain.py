"""One chain, trimmed: the unit CoT trimming is made of (one chain in, trimmed chain out), so a
strategy that samples chains can trim each before it votes.

The chain streams in the engine as its own request. While it thinks, probes (``ProbeExit``)
and the thought judge (``ThoughtJudge``) run beside it; the first of them to call the thinking
done sets where it is cut, and the chain's request is aborted at its next token. The answer is
written from the chain's own token ids up to the cut plus the injected text (a closing prompt,
then the answer prompt), so the engine's prefix cache serves the chain. After a probe exit the
deciding probe's reply already is the answer's start: it is continued only if it was cut short.

A chain that never closes its thinking (the format's ``think_end`` never appears) is thinking
all along: when it stops on its own or reaches its thinking limit, the answer prompt is
appended and the answer forced. Forced answers are greedy: the thinking has decided the answer,
and sampling it again would only add noise.

Every request is charged to the ledger: the chain's (its tokens after the cut as well), each
probe's (aborted ones too), the answer's, and the judge's (as verifier calls). The chain's
tokens before ``think_end`` are charged as thinking tokens.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from ponder.core.generation import (
    Completion,
    FinishReason,
    GenerationState,
    SamplingParams,
)
from ponder.core.problem import Problem
from ponder.core.result import Candidate
from ponder.core.sampling import SamplingConfig
from ponder.core.thinking import ThinkingFormat
from ponder.core.usage import Usage
from ponder.runtime import Run, Spending
from ponder.strategies.cot_judge import (
    JudgeQueue,
    Pattern,
    PatternCheck,
    Thought,
    ThoughtJudge,
    ThoughtLog,
)
from ponder.strategies.cot_probe import Probe, ProbeExit, ProbeWindow
from ponder.verifiers.answers import AnswerExtractor

EndedBy = Literal[
    "answered",  # closed its thinking itself
    "probe",  # the last probes agreed
    "overthinking",
    "underthinking",
    "repetition",
    "thinking_limit",  # still thinking at the limit: answer forced
    "unclosed",  # stopped without closing its thinking: answer forced
    "clock",  # the budget's time ran out
]


@dataclass(frozen=True)
class _Cut:
    """Where a chain's own tokens end and what is injected before its answer."""

    ended_by: EndedBy
    tokens: int
    injected: str = ""
    """Empty when the chain answered on its own (or nothing more can be generated)."""
    probe: Probe | None = None
    """The probe whose reply starts the answer, after a probe exit."""


@dataclass
class TrimmedChain:
    """A chain after trimming, with what it cost."""

    token_ids: list[int]
    """The prompt's continuation: the chain's kept tokens, any injected text, the answer."""
    text: str
    answer: str | None
    finish_reason: FinishReason | None
    ended_by: EndedBy
    kept_tokens: int
    """Of the chain's own tokens, those kept (where the thinking was cut)."""
    streamed_tokens: int
    """Every token the chain's own request generated, kept or not."""
    generated_tokens: int
    """Everything generated for this chain: its own request, its probes, its answer (the
    judge's tokens are the run's)."""
    thinking_tokens: int
    """Of ``token_ids``, those before the answer."""
    probes_sent: int
    probes: list[Probe] = field(default_factory=list)
    """The probes that came back, in the order they did."""
    seen: dict[str, int] = field(default_factory=dict)
    """Per pattern, the thoughts judged (or found word for word) to show it."""
    timed_out: bool = False

    def candidate(self, index: int) -> Candidate:
        return Candidate(
            index=index,
            text=self.text,
            num_tokens=len(self.token_ids),
            finish_reason=self.finish_reason,
            answer=self.answer,
            thinking_tokens=self.thinking_tokens,
            token_ids=self.token_ids,
        )


@dataclass(frozen=True)
class ChainTrimmer:
    """Runs one chain with the triggers that may trim it. Holds configuration only: every run
    keeps its own state, so one trimmer serves concurrent chains."""

    thinking: ThinkingFormat
    extractor: AnswerExtractor
    sampling: SamplingConfig
    answer_max_tokens: int
    max_thinking_tokens: int | None = None
    """None: the chain thinks until ``sampling.max_tokens``."""
    probe: ProbeExit | None = None
    judge: ThoughtJudge | None = None

    async def trim(
        self,
        problem: Problem,
        prompt: list[int],
        ctx: Run,
        *,
        judges: JudgeQueue | None = None,
        max_tokens: int | None = None,
    ) -> TrimmedChain | None:
        """Run one chain from ``prompt`` (the rendered problem) and trim it. ``judges`` shares
        judge batches with other chains (None: this chain's own). ``max_tokens`` overrides
        ``sampling.max_tokens``. None when the budget cannot hold the chain and its answer."""
        max_tokens = max_tokens or self.sampling.max_tokens
        held = ctx.hold(
            generated_tokens=max_tokens + self.answer_max_tokens,
            prompt_tokens=len(prompt),
            model_calls=1,
        )
        if held is None:
            return None
        own = None
        if judges is None and self.judge is not None:
            judges = own = JudgeQueue(self.judge, ctx)
        try:
            with held:
                return await _ChainRun(self, problem, prompt, ctx, judges, max_tokens).run(held)
        finally:
            if own is not None:
                await own.drain()


@dataclass(frozen=True)
class _Judging:
    """What judging one chain takes: the judge, the chain's thoughts, the run's batches."""

    judge: ThoughtJudge
    log: ThoughtLog
    queue: JudgeQueue


class _ChainRun:
    """The state of one chain while it runs."""

    def __init__(
        self,
        trimmer: ChainTrimmer,
        problem: Problem,
        prompt: list[int],
        ctx: Run,
        judges: JudgeQueue | None,
        max_tokens: int,
    ) -> None:
        self.trimmer, self.problem, self.prompt, self.ctx = trimmer, problem, prompt, ctx
        self.max_tokens = max_tokens
        self.thinking_limit = min(trimmer.max_thinking_tokens or max_tokens, max_tokens)
        self.answer_prompt = ctx.encode(trimmer.thinking.answer_prompt)
        probe, judge = trimmer.probe, trimmer.judge
        self.probing = (probe, ProbeWindow(probe.window)) if probe is not None else None
        self.next_probe = probe.interval if probe is not None else 0
        self.probe_steps = 0
        self.probes_sent = 0
        self.probe_tokens = 0
        self.probes: list[Probe] = []
        self.judging = (
            _Judging(judge, ThoughtLog(trimmer.thinking), judges)
            if judge is not None and judges is not None
            else None
        )
        self.counts: list[int] = []
        """Chain tokens after each update, with ``lengths`` its text length then: maps a
        position in the text to the tokens wholly before it."""
        self.lengths: list[int] = []
        self.scan = 0
        """Where to look for ``think_end`` in the text (a marker may straddle two updates)."""
        self.closed = False
        """The chain closed its thinking itself."""
        self.done = False
        """The chain's own request has ended."""
        self.cut: _Cut | None = None
        self.checks: list[asyncio.Task[None]] = []

    @property
    def settled(self) -> bool:
        """Nothing a probe or the judge says can change this chain any more."""
        return self.done or self.closed or self.cut is not None

    async def run(self, held: Spending) -> TrimmedChain:
        """The chain (charged to ``held``, which also holds the answer's tokens) and the answer
        after its cut."""
        ctx, sampling = self.ctx, self.trimmer.sampling
        params = SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=self.max_tokens,
            stop=sampling.stop,
            seed=ctx.next_seed(),
        )
        try:
            state = await held.generate(self.prompt, params, until=self._observe)
            self.done = True
            await asyncio.gather(*self.checks)  # probes in flight stop at their next token
            chain = state.completions[0]
            thinking = self.trimmer.thinking.split_tokens(chain.token_ids, ctx.decode)
            held.add(Usage(thinking_tokens=thinking))
            cut = self.cut or self._natural_end(chain, state.timed_out)
            token_ids, finish_reason, answering = await self._answer(chain, cut)
        finally:
            self.done = True
            for check in self.checks:
                check.cancel()  # still running only when something above failed
        spent = held.spent + answering
        return self._trimmed(chain, cut, token_ids, finish_reason, spent, state.timed_out)

    # -- watching the chain ---------------------------------------------------------------
    def _observe(self, state: GenerationState) -> bool:
        """Called on every update of the chain; True aborts it."""
        if self.cut is not None:
            return True
        if self.closed:
            return False
        chain = state.completions[0]
        tokens, text = chain.num_tokens, chain.text
        self.counts.append(tokens)
        self.lengths.append(len(text))
        thinking = self.trimmer.thinking
        if thinking.thinking_end(text[self.scan :]) is not None:
            self.closed = True  # it answers on its own now
            return False
        self.scan = max(0, len(text) - len(thinking.think_end) + 1)
        if tokens >= self.thinking_limit:
            self._decide(_Cut("thinking_limit", self.thinking_limit, thinking.answer_prompt))
            return True
        if self.probing is not None and tokens >= self.next_probe:
            probe, window = self.probing
            self.probe_steps += 1
            self._launch(self._probe(self.probe_steps, list(chain.token_ids), probe, window))
            self.next_probe = (tokens // probe.interval + 1) * probe.interval
        if self.judging is not None:
            for thought in self.judging.log.completed(text):
                self._on_thought(thought, self.judging)
        return self.cut is not None

    def _launch(self, check: Coroutine[Any, Any, None]) -> None:
        self.checks.append(asyncio.create_task(check))

    def _decide(self, cut: _Cut) -> None:
        """The first decision wins; none counts once the chain has settled otherwise."""
        if not self.settled:
            self.cut = cut

    def _tokens_before(self, offset: int) -> int:
        """The most chain tokens whose text ends at or before ``offset``."""
        update = bisect.bisect_right(self.lengths, offset) - 1
        return self.counts[update] if update >= 0 else 0

    # -- probes -----------------------------------------------------------------------------
    async def _probe(
        self, step: int, token_ids: list[int], probe: ProbeExit, window: ProbeWindow
    ) -> None:
        ctx = self.ctx
        prefix = self.prompt + token_ids + self.answer_prompt
        held = ctx.hold(
            generated_tokens=probe.max_tokens, prompt_tokens=len(prefix), model_calls=1
        )
        if held is None:
            return
        self.probes_sent += 1
        with held:
            state = await held.generate(
                prefix,
                SamplingParams(temperature=0.0, max_tokens=probe.max_tokens),
                until=lambda _: self.settled,
            )
        self.probe_tokens += state.usage.generated_tokens
        reply = state.completions[0]
        if reply.finish_reason == "aborted" or state.timed_out:
            return  # stopped because the chain no longer needed it
        read = Probe.read(
            step, len(token_ids), reply.text, reply.token_ids, reply.finish_reason,
            thinking=self.trimmer.thinking, extractor=self.trimmer.extractor,
        )
        self.probes.append(read)
        deciding = window.add(read)
        if deciding is not None:
            answer_prompt = self.trimmer.thinking.answer_prompt
            self._decide(_Cut("probe", deciding.thinking_tokens, answer_prompt, deciding))

    # -- the judge ------------------------------------------------------------------------
    def _on_thought(self, thought: Thought, judging: _Judging) -> None:
        repetition, log = judging.judge.repetition, judging.log
        if repetition is not None and repetition.exact and log.repeats(thought):
            if log.tally("repetition", repetition):
                self._decide(self._trim("repetition", repetition, thought))
            return
        if thought.index > 0:  # the first has nothing earlier to compare with
            self._launch(self._judge(thought, judging))

    async def _judge(self, thought: Thought, judging: _Judging) -> None:
        judge, log = judging.judge, judging.log
        questions = judge.questions(self.problem, log.earlier(thought), thought.text)
        scores = await judging.queue.ask([prompt for _, _, prompt in questions])
        tripped: list[tuple[Pattern, PatternCheck]] = []
        for (pattern, check, _), score in zip(questions, scores):
            shows = score.value is not None and score.value >= check.threshold
            if shows and log.tally(pattern, check):
                tripped.append((pattern, check))
        if tripped:
            self._decide(self._trim(*tripped[0], thought))

    def _trim(self, pattern: Pattern, check: PatternCheck, thought: Thought) -> _Cut:
        injected = check.closing_prompt + self.trimmer.thinking.answer_prompt
        return _Cut(pattern, self._tokens_before(thought.end), injected)

    # -- the answer -------------------------------------------------------------------------
    def _natural_end(self, chain: Completion, timed_out: bool) -> _Cut:
        thinking = self.trimmer.thinking
        if self.closed or thinking.thinking_end(chain.text) is not None:
            return _Cut("answered", chain.num_tokens)
        if timed_out:
            return _Cut("clock", chain.num_tokens)
        ended_by: EndedBy = "thinking_limit" if chain.finish_reason == "length" else "unclosed"
        return _Cut(ended_by, chain.num_tokens, thinking.answer_prompt)

    async def _answer(
        self, chain: Completion, cut: _Cut
    ) -> tuple[list[int], FinishReason | None, Usage]:
        """The continuation of the prompt (kept tokens, injected text, answer), its finish
        reason and the usage of writing the answer. The chain's hold holds the answer's
        tokens; the answer's own engine call and prompt are held here, and when the budget
        cannot hold them the chain ends at the injected prompt."""
        kept = list(chain.token_ids[: cut.tokens])
        if not cut.injected:
            return kept, chain.finish_reason, Usage()
        eos = self.ctx.eos_token_ids
        while kept and kept[-1] in eos:
            kept.pop()  # an injected prompt goes where the chain stopped, not after its end
        token_ids = kept + self.ctx.encode(cut.injected)
        written = list(cut.probe.token_ids) if cut.probe is not None else []
        finish = cut.probe.finish_reason if cut.probe is not None else None
        token_ids += written
        room = self.trimmer.answer_max_tokens - len(written)
        prefix = self.prompt + token_ids
        call = None
        if finish != "stop" and room >= 1:
            call = self.ctx.hold(model_calls=1, prompt_tokens=len(prefix))
        if call is None:
            return token_ids, finish, Usage()
        with call:
            state = await call.generate(prefix, SamplingParams(temperature=0.0, max_tokens=room))
        reply = state.completions[0]
        return token_ids + reply.token_ids, reply.finish_reason, call.spent

    def _trimmed(
        self,
        chain: Completion,
        cut: _Cut,
        token_ids: list[int],
        finish_reason: FinishReason | None,
        spent: Usage,
        timed_out: bool,
    ) -> TrimmedChain:
        decode, thinking = self.ctx.decode, self.trimmer.thinking
        text = decode(token_ids)
        return TrimmedChain(
            token_ids=token_ids,
            text=text,
            answer=self.trimmer.extractor.extract(text),
            finish_reason=finish_reason,
            ended_by=cut.ended_by,
            kept_tokens=cut.tokens,
            streamed_tokens=chain.num_tokens,
            generated_tokens=spent.generated_tokens + self.probe_tokens,
            thinking_tokens=thinking.split_tokens(token_ids, decode),
            probes_sent=self.probes_sent,
            probes=self.probes,
            seen=dict(self.judging.log.seen) if self.judging is not None else {},
            timed_out=timed_out,
        )
