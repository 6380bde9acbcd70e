"""Step expansion: continue many tree nodes by one reasoning step each, all in one go.

A step ends at the first delimiter (a stop string of ``StepConfig.delimiters`` or a token of
``StepConfig.stop_token_ids``), or after ``max_step_tokens`` tokens when no delimiter came.
A delimiter the model never writes is therefore not an error: every step is then exactly
``max_step_tokens`` long. A path ends (its node is ``finished``) at the end of the answer:
EOS or one of the chain's own stop strings (``sampling.stop``), when it reaches the chain's
token limit (``sampling.max_tokens``, counted over all its steps), or, with
``StepConfig.answer_marker``, at the step that writes the marker (the whole step is kept).

``expand`` sends one request per parent (``n`` children each), every request at once, so
the engine batches them; each prompt is the parent's full prefix as token ids, so the prefix
cache serves what siblings and cousins share. Stop strings are kept in the output
(``include_stop_str_in_output``): vLLM and the scripted backend then return every token
they generated, the delimiter's included, so a child's ids are exactly what the engine
produced and its children continue from ``parent prefix + those ids``.

Budget: each request goes through the run, which reserves it (``n × step tokens``
generated, its prompt, one model call) before it is submitted. A request that does not fit
gets as many samples as do fit, or is not submitted at all; the expansion then says the
budget ran out. The budget's clock is the timeout: steps still running at the deadline are aborted in the engine, kept in the
tree as ``pruned`` (their tokens were spent) and reported as ``timed_out``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ponder.core.generation import Completion, GenerationState, SamplingParams
from ponder.core.sampling import SamplingConfig
from ponder.core.thinking import ThinkingFormat
from ponder.core.usage import Usage
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.search.thinking import step_thinking_tokens
from ponder.search.tree import Node, NodeStatus, SearchTree


class StepConfig(BaseModel):
    """Where one reasoning step ends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delimiters: tuple[str, ...] = Field(
        ("\n\n",), description="Stop strings that end a step (kept in the step's text)."
    )
    stop_token_ids: tuple[int, ...] = Field(
        (), description="Token ids that end a step (kept in the step's ids)."
    )
    max_step_tokens: int = Field(
        128, ge=1, description="Most tokens per step; a step with no delimiter ends here."
    )
    answer_marker: str | None = Field(
        None,
        min_length=1,
        description="A step whose text contains this string (e.g. 'Answer:') ends its path: "
        "the answer is written, and what a model adds after it is not worth searching. None: "
        "paths end at EOS, a chain stop string or the chain's token limit.",
    )

    @field_validator("delimiters")
    @classmethod
    def _no_empty_delimiter(cls, delimiters: tuple[str, ...]) -> tuple[str, ...]:
        if "" in delimiters:
            raise ValueError("every delimiter must have at least 1 character, got ''")
        return delimiters

    def ends_step(self, completion: Completion) -> bool:
        """Whether the engine stopped ``completion`` at one of this config's delimiters."""
        reason = completion.stop_reason
        return completion.finish_reason == "stop" and (
            reason in self.delimiters or reason in self.stop_token_ids
        )

    def writes_answer(self, text: str) -> bool:
        """Whether a step with ``text`` wrote the answer marker (always False without one)."""
        return self.answer_marker is not None and self.answer_marker in text

    @property
    def answer_reason(self) -> str:
        """Why a path that wrote the answer marker ended (kept on its last node)."""
        return f"wrote the answer marker {self.answer_marker!r}"


@dataclass
class Expansion:
    """What one ``expand`` call did."""

    parents: list[int]
    children: list[list[Node]]
    """New nodes per entry of ``parents`` (sample order); [] for a parent not submitted."""
    usage: Usage = field(default_factory=Usage)
    """The engine's usage for these requests (``wall_seconds``: the span of the call)."""
    budget_exhausted: bool = False
    """Some children were not asked for because the budget could not hold them."""
    exhausted_by: str | None = None
    timed_out: bool = False
    """The budget's clock cut running steps short (they are in the tree, pruned)."""

    @property
    def nodes(self) -> list[Node]:
        """Every new node, in order."""
        return [node for group in self.children for node in group]


@dataclass
class Rollout:
    """A greedy continuation of a node, for scoring only: it is not added to the tree."""

    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    logprobs: list[float] | None = None
    finished: bool = False
    """No more steps come: the answer ended, the chain's token limit was reached, the node
    was not open, or the budget (or its clock) refused the next step."""


async def expand(
    tree: SearchTree,
    parents: Sequence[int],
    ctx: Run,
    *,
    n: int,
    step: StepConfig,
    sampling: SamplingConfig,
    logprobs: bool = False,
    to_end: bool = False,
    thinking: ThinkingFormat | None = None,
) -> Expansion:
    """Add up to ``n`` children under each of ``parents`` (open nodes; one may appear more
    than once, each entry being its own request). With ``to_end`` the step runs to the end
    of the answer (no delimiters, up to the chain's token limit): the last step of a search.
    With ``thinking``, the thinking part of every new step is charged to the run."""
    if n < 1:
        raise BadRequestError(f"n must be >= 1, got {n}")
    jobs = [_job(tree, parent, n, step, sampling, to_end) for parent in parents]
    batch = await _generate(
        ctx, jobs, lambda k, tokens: _params(k, tokens, step, sampling, logprobs, to_end, ctx)
    )
    children = [
        [] if state is None else [
            _child(tree, job.parent, completion, step, sampling, to_end, ctx)
            for completion in state.completions
        ]
        for job, state in zip(jobs, batch.states)
    ]
    if thinking is not None:
        ctx.charge_thinking(sum(
            step_thinking_tokens(tree, node.id, thinking, ctx.decode)
            for group in children for node in group
        ))
    return Expansion(
        parents=list(parents),
        children=children,
        usage=batch.usage,
        budget_exhausted=batch.short or batch.timed_out,
        exhausted_by=batch.exhausted_by,
        timed_out=batch.timed_out,
    )


async def rollout(
    tree: SearchTree,
    nodes: Sequence[int],
    ctx: Run,
    *,
    steps: int,
    step: StepConfig,
    sampling: SamplingConfig,
    logprobs: bool = False,
) -> dict[int, Rollout]:
    """Greedy look-ahead: continue each open node of ``nodes`` by up to ``steps`` more steps
    at temperature 0, all nodes' steps submitted together. The tokens are charged to the
    ledger and added to each node's ``cost``; the tree gains no nodes. A roll-out stops early
    at the end of the answer, at the chain's token limit, or when the budget refuses it."""
    greedy = sampling.model_copy(update={"temperature": 0.0})
    rollouts = {
        i: Rollout(logprobs=[] if logprobs else None, finished=tree.node(i).status != "open")
        for i in nodes
    }
    for _ in range(steps):
        jobs = [
            _Job(i, tree.prefix(i) + rolled.token_ids, 1, max_tokens)
            for i, rolled in rollouts.items()
            if not rolled.finished
            and (max_tokens := _step_tokens(tree, i, step, greedy, False, rolled)) > 0
        ]
        if not jobs:
            break
        batch = await _generate(
            ctx, jobs, lambda k, tokens: _params(k, tokens, step, greedy, logprobs, False, ctx)
        )
        for job, state in zip(jobs, batch.states):
            rolled = rollouts[job.parent]
            if state is None:
                rolled.finished = True  # the budget ends this roll-out
                continue
            completion = state.completions[0]
            _extend(rolled, completion, step, ctx)
            tree.node(job.parent).cost += completion.num_tokens
            used = tree.generated_tokens(job.parent) + len(rolled.token_ids)
            if used >= sampling.max_tokens or completion.finish_reason == "aborted":
                rolled.finished = True
        if batch.timed_out:
            break
    return rollouts


# -- internals ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    parent: int
    prefix: list[int]
    n: int
    max_tokens: int


@dataclass
class _Batch:
    states: list[GenerationState | None]
    """Per job, its final state; None when the budget could not hold even one sample."""
    usage: Usage
    short: bool
    """Some job got fewer samples than it asked for."""
    exhausted_by: str | None
    timed_out: bool


def _job(
    tree: SearchTree, parent: int, n: int, step: StepConfig, sampling: SamplingConfig, to_end: bool
) -> _Job:
    node = tree.node(parent)
    if node.status != "open":
        raise BadRequestError(f"node {parent} is {node.status}; only open nodes can be expanded")
    max_tokens = _step_tokens(tree, parent, step, sampling, to_end)
    if max_tokens < 1:
        raise BadRequestError(
            f"node {parent} has used the chain's {sampling.max_tokens} tokens; it cannot grow"
        )
    return _Job(parent, tree.prefix(parent), n, max_tokens)


def _step_tokens(
    tree: SearchTree,
    node_id: int,
    step: StepConfig,
    sampling: SamplingConfig,
    to_end: bool,
    rolled: Rollout | None = None,
) -> int:
    """Tokens the next step may generate: what the chain has left, capped by the step limit."""
    used = tree.generated_tokens(node_id) + (len(rolled.token_ids) if rolled else 0)
    left = sampling.max_tokens - used
    return left if to_end else min(step.max_step_tokens, left)


def _params(
    n: int,
    max_tokens: int,
    step: StepConfig,
    sampling: SamplingConfig,
    logprobs: bool,
    to_end: bool,
    ctx: Run,
) -> SamplingParams:
    return SamplingParams(
        n=n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=max_tokens,
        stop=tuple(sampling.stop) if to_end else (*step.delimiters, *sampling.stop),
        stop_token_ids=() if to_end else step.stop_token_ids,
        include_stop_str_in_output=True,
        logprobs=0 if logprobs else None,
        seed=ctx.next_seed(),
    )


async def _generate(
    ctx: Run, jobs: list[_Job], params: Callable[[int, int], SamplingParams]
) -> _Batch:
    """Submit every job at once, each with as many of its samples as the budget holds
    (``params(samples, max_tokens)`` builds its parameters). If one request fails, the others
    are cancelled (aborted in the engine) and the failure is raised."""
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(ctx.generate(job.prefix, params(job.n, job.max_tokens), fit=True))
        for job in jobs
    ]
    try:
        states: list[GenerationState | None] = list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    usage = Usage()
    short = timed_out = False
    for job, state in zip(jobs, states):
        short = short or state is None or state.request.params.n < job.n
        if state is not None:
            usage.add(state.usage)
            timed_out = timed_out or state.timed_out
    usage.wall_seconds = time.perf_counter() - started
    exhausted_by = ctx.ledger.exhausted_by if short else ("seconds" if timed_out else None)
    return _Batch(states, usage, short, exhausted_by, timed_out)


def _child(
    tree: SearchTree,
    parent: int,
    completion: Completion,
    step: StepConfig,
    sampling: SamplingConfig,
    to_end: bool,
    ctx: Run,
) -> Node:
    status: NodeStatus
    text = ctx.decode(completion.token_ids)
    chain_tokens = tree.generated_tokens(parent) + completion.num_tokens
    if completion.finish_reason == "aborted":
        status, reason = "pruned", "aborted before the step ended (the budget's clock)"
    elif chain_tokens >= sampling.max_tokens:
        status, reason = "finished", "reached the chain's token limit"
    elif completion.finish_reason == "stop" and (to_end or not step.ends_step(completion)):
        status, reason = "finished", None  # EOS or a chain stop string: the answer ended
    elif step.writes_answer(text):
        status, reason = "finished", step.answer_reason
    else:
        status, reason = "open", None  # a delimiter, or the step's token limit
    node = tree.add_child(
        parent,
        completion.token_ids,
        text,
        status=status,
        finish_reason=completion.finish_reason,
        stop_reason=completion.stop_reason,
        logprobs=completion.logprobs,
    )
    node.score_reason = reason
    return node


def _extend(rolled: Rollout, completion: Completion, step: StepConfig, ctx: Run) -> None:
    text = ctx.decode(completion.token_ids)
    rolled.token_ids.extend(completion.token_ids)
    rolled.text += text
    if rolled.logprobs is not None:
        rolled.logprobs.extend(completion.logprobs or ())
    ended = completion.finish_reason == "stop" and not step.ends_step(completion)
    if ended or step.writes_answer(text):
        rolled.finished = True
