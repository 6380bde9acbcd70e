"""DeepConf (Fu et al., "Deep Think with Confidence", 2025): vote with the traces the model was
sure of, and stop the others as soon as they lose their way.

Each trace's confidence comes from the top logprobs it was sampled with
(``ponder.verifiers.confidence``), so it costs no extra model call.

- ``offline``: sample ``n`` traces, keep the most confident ``keep`` share of them and vote
  among those, each weighted by its confidence.
- ``online``: sample ``warmup`` traces whole; the ``1 - keep`` quantile of their lowest group
  confidences is the threshold. The other traces then run together, each aborted in the
  engine the moment a full group of its tokens falls below the threshold (its tokens count
  as cancelled), and all of them stop once the vote is settled: the leading answer holds
  ``consensus`` of the confidence-weighted vote.

Offline, a trace votes when it gave an answer and its confidence reaches the threshold;
online, every warm-up trace votes and so does every later trace that ran to its end (the
threshold stopped the others). When no kept trace gave an answer, every trace that finished
with one votes (the details say so). Ties follow the
weighted vote's rule: the shortest chain, then the earliest trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from ponder.core.generation import Completion, GenerationState, SamplingParams
from ponder.core.problem import Problem
from ponder.core.result import Candidate, Result
from ponder.core.sampling import SamplingConfig
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies.base import Strategy, strategies
from ponder.strategies.sampling import candidate_from, thinking_split
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.confidence import ConfidenceSettings, GroupWatch, keep_threshold
from ponder.verifiers.selection import select


@dataclass
class _Trace:
    candidate: Candidate
    confidence: float | None
    """Under the settings' measure: the vote's weight."""
    lowest_group: float | None
    """Its lowest group confidence, from which the online threshold is set."""
    stopped: str | None = None
    """Why it was aborted: "low_confidence" or "settled"; None when it ran to its end."""


@strategies.register("deepconf")
class DeepConf(Strategy):
    name = "deepconf"

    n: int = Field(16, ge=1, le=1024, description="Most traces sampled.")
    mode: Literal["online", "offline"] = Field(
        "online", description="'online': stop low-confidence traces and settled votes as they "
        "stream; 'offline': sample all n, then filter and vote.",
    )
    warmup: int = Field(
        4, ge=1, le=1024,
        description="Online: traces sampled whole first, whose confidences set the threshold.",
    )
    keep: float = Field(
        0.9, gt=0.0, le=1.0,
        description="Share of traces kept by confidence (DeepConf's eta): 0.9 keeps most "
        "(DeepConf-high), 0.1 only the most confident (DeepConf-low, stops far more traces).",
    )
    consensus: float | None = Field(
        0.95, gt=0.5, le=1.0,
        description="Online: stop sampling once the leading answer holds this share of the "
        "confidence-weighted vote; None: sample all n.",
    )
    confidence: ConfidenceSettings = ConfidenceSettings()
    sampling: SamplingConfig = SamplingConfig()
    extractor: AnswerExtractor = AnswerExtractor()

    @model_validator(mode="after")
    def _warmup_within_n(self) -> DeepConf:
        if self.mode == "online" and self.warmup > self.n:
            raise ValueError(
                f"warmup must be <= n, got warmup={self.warmup}, n={self.n}"
            )
        return self

    def gives_logprobs(self) -> bool:
        return True

    async def run(self, problem: Problem, ctx: Run) -> Result:
        prompt = ctx.render(problem, self.system_prompt)
        first = self.n if self.mode == "offline" else self.warmup
        state = await ctx.generate(prompt, self._params(first, ctx.next_seed()), fit=True)
        if state is None:
            return ctx.result(self.name, [], None, cut=True)
        _check_logprobs(state, ctx)
        traces = [self._trace(i, c) for i, c in enumerate(self._split(state, ctx))]
        cut = state.timed_out or len(traces) < first
        gate = "lowest_group" if self.mode == "online" else "confidence"
        values = [v for t in traces if (v := getattr(t, gate)) is not None]
        threshold = keep_threshold(values, self.keep)
        if self.mode == "online" and not cut and not self._settled(traces, threshold):
            more, cut = await self._stream_rest(prompt, ctx, threshold, traces)
            traces += more
        return self._result(traces, threshold, cut, ctx)

    def _params(self, n: int, seed: int) -> SamplingParams:
        return SamplingParams(
            n=n, temperature=self.sampling.temperature, top_p=self.sampling.top_p,
            max_tokens=self.sampling.max_tokens, stop=self.sampling.stop,
            logprobs=self.confidence.top_k, seed=seed,
        )

    def _split(self, state: GenerationState, ctx: Run) -> list[Completion]:
        """The state's samples, their thinking charged to the ledger."""
        thinking_split(state.completions, self.thinking, ctx)
        return state.completions

    def _trace(self, index: int, completion: Completion) -> _Trace:
        confidences = self.confidence.tokens(completion.top_logprobs or [])
        candidate = candidate_from(index, completion, self.extractor)
        return _Trace(
            candidate, self.confidence.trace(confidences),
            self.confidence.lowest_group(confidences),
        )

    async def _stream_rest(
        self, prompt: list[int], ctx: Run, threshold: float, traces: list[_Trace]
    ) -> tuple[list[_Trace], bool]:
        """The traces after the warm-up, all at once, each stopped when its group confidence
        falls below ``threshold`` or the vote settles. (new traces, whether the budget cut)"""
        settled = False
        refused = False
        more: list[_Trace] = []
        seeds = [ctx.next_seed() for _ in range(self.n - len(traces))]

        async def one(index: int, seed: int) -> None:
            nonlocal settled, refused
            watch = GroupWatch(self.confidence, threshold)
            why: list[str] = []

            def until(state: GenerationState) -> bool:
                if state.completions[0].finished:
                    return False  # it ended on its own in this update: nothing to stop
                if settled:
                    why.append("settled")
                elif watch.below(state.completions[0].top_logprobs or []):
                    why.append("low_confidence")
                return bool(why)

            state = await ctx.generate(prompt, self._params(1, seed), until=until)
            if state is None:
                refused = True
                return
            refused = refused or state.timed_out
            trace = self._trace(index, self._split(state, ctx)[0])
            trace.stopped = why[0] if why else None
            more.append(trace)
            if not settled and self._settled([*traces, *more], threshold):
                settled = True

        start = len(traces)
        await asyncio.gather(*(one(start + i, seed) for i, seed in enumerate(seeds)))
        return sorted(more, key=lambda t: t.candidate.index), refused and not settled

    def _voters(self, traces: Sequence[_Trace], threshold: float) -> list[_Trace]:
        """Offline: the traces whose confidence reaches the threshold. Online: every trace
        that ran to its end (the warm-up set the threshold; later traces below it were
        stopped before they could finish)."""
        return [
            t for t in traces
            if t.stopped is None and t.candidate.finish_reason != "aborted"
            and t.candidate.answer is not None
            and (self.mode == "online" or (t.confidence or 0.0) >= threshold)
        ]

    def _settled(self, traces: Sequence[_Trace], threshold: float) -> bool:
        """Whether the leading answer holds ``consensus`` of the weighted vote (a vote of
        one is never settled)."""
        voters = self._voters(traces, threshold)
        if self.consensus is None or len(voters) < 2:
            return False
        _, evidence = _weighted_vote(voters)
        votes = evidence.get("votes", {})
        total = sum(votes.values())
        return bool(votes) and total > 0 and max(votes.values()) / total >= self.consensus

    def _result(
        self, traces: list[_Trace], threshold: float, cut: bool, ctx: Run
    ) -> Result:
        voters = self._voters(traces, threshold)
        fallback = not voters
        if fallback:
            voters = [
                t for t in traces
                if t.candidate.finish_reason != "aborted" and t.candidate.answer is not None
            ]
        winner, evidence = _weighted_vote(voters)
        voting = {id(t) for t in voters}
        for trace in traces:
            trace.candidate.record(trace.confidence, _reason(trace, threshold, id(trace) in voting))
        stopped = [t.stopped for t in traces]
        details: dict[str, Any] = {
            **evidence,
            "threshold": threshold,
            "confidences": [t.confidence for t in traces],
            "voters": [t.candidate.index for t in voters],
            "stopped_low_confidence": stopped.count("low_confidence"),
            "stopped_settled": stopped.count("settled"),
            "settled": self._settled(traces, threshold),
            "cancelled_tokens": ctx.ledger.spent.cancelled_tokens,
        }
        if fallback:
            details["fallback"] = "no trace reached the threshold: every finished trace voted"
        candidates = [t.candidate for t in traces]
        return ctx.result(self.name, candidates, winner, cut=cut, details=details)


def _check_logprobs(state: GenerationState, ctx: Run) -> None:
    """Refuse a backend that returned no top logprobs: every confidence would be missing and
    the threshold meaningless, so the run would be a plain vote that claims to be DeepConf."""
    blind = [c for c in state.completions if c.token_ids and not c.top_logprobs]
    if blind:
        raise BadRequestError(
            f"deepconf reads token confidence from top logprobs, but backend "
            f"{ctx.backend.name!r} returned none for {len(blind)} of "
            f"{len(state.completions)} traces: use a backend that returns logprobs (vLLM, or "
            "an OpenAI-compatible server that honours logprobs/top_logprobs)"
        )


def _weighted_vote(voters: Sequence[_Trace]) -> tuple[int | None, dict[str, Any]]:
    return select(
        [t.candidate for t in voters], "weighted",
        weights=[t.confidence or 0.0 for t in voters],
    )


def _reason(trace: _Trace, threshold: float, voted: bool) -> str | None:
    if trace.stopped == "low_confidence":
        return f"stopped: a group's confidence fell below the threshold {threshold:.3f}"
    if trace.stopped == "settled":
        return "stopped: the vote was settled"
    if voted:
        return None
    if trace.candidate.finish_reason == "aborted":
        return "stopped by the budget's clock"
    if trace.candidate.answer is None:
        return "no answer"
    return f"confidence below the threshold {threshold:.3f}"
