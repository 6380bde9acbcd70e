"""Step expansion on the scripted backend: requests as id prefixes all submitted together,
where steps end, the chain's token limit, budgets and the clock, greedy roll-outs."""

from __future__ import annotations

import asyncio

import pytest
from search_helpers import context, path_backend

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget
from ponder.errors import BadRequestError
from ponder.search.expansion import StepConfig, expand, rollout
from ponder.search.tree import ROOT, SearchTree
from ponder.strategies import SamplingConfig

PROMPT = [ord(ch) for ch in "Q: "]
STEP = StepConfig(delimiters=("\n\n",), max_step_tokens=8)
SAMPLING = SamplingConfig(max_tokens=20)


def tree() -> SearchTree:
    return SearchTree(PROMPT, prompt_text="Q: ")


async def test_children_continue_their_parents_ids_in_one_concurrent_round() -> None:
    steps = {"": ["a\n\nx", "b\n\ny"], "a\n\n": ["c\n\n", "d\n\n"], "b\n\n": ["e\n\n", "f\n\n"]}
    backend = path_backend(steps, PROMPT)
    ctx, t = context(backend), tree()
    first = await expand(t, [ROOT], ctx, n=2, step=STEP, sampling=SAMPLING)
    assert [n.text for n in first.nodes] == ["a\n\n", "b\n\n"]  # the delimiter is kept
    assert [n.status for n in first.nodes] == ["open", "open"]
    second = await expand(t, [n.id for n in first.nodes], ctx, n=2, step=STEP, sampling=SAMPLING)
    requests = backend.requests[1:]
    assert [r.params.n for r in requests] == [2, 2]
    assert [list(r.prompt_token_ids) for r in requests] == [t.prefix(n.id) for n in first.nodes]
    assert [[c.text for c in group] for group in second.children] == [
        ["c\n\n", "d\n\n"], ["e\n\n", "f\n\n"]]
    assert t.prefix(second.nodes[3].id) == PROMPT + [ord(ch) for ch in "b\n\nf\n\n"]
    assert all(r.params.include_stop_str_in_output for r in backend.requests)
    assert second.usage.generated_tokens == 12 and second.usage.model_calls == 2


async def test_all_requests_are_in_flight_together() -> None:
    started: list[float] = []

    def handler(request, sample, call):  # type: ignore[no-untyped-def]
        started.append(asyncio.get_running_loop().time())
        return ScriptedSample("step\n\n", delay=0.01)  # 6 tokens: 60 ms per request

    ctx, t = context(ScriptedBackend(handler)), tree()
    first = await expand(t, [ROOT], ctx, n=4, step=STEP, sampling=SAMPLING)
    parents = [n.id for n in first.nodes]
    started.clear()
    second = await expand(t, parents, ctx, n=1, step=STEP, sampling=SAMPLING)
    assert len(second.nodes) == 4
    assert max(started) - min(started) < 0.03  # one after another would take >= 180 ms
    assert second.usage.wall_seconds < 0.15


@pytest.mark.parametrize(
    ("step", "text", "statuses", "texts"),
    [
        (STEP, "one\n\ntwo", ["open"], ["one\n\n"]),
        (STEP, "12", ["finished"], ["12"]),
        (StepConfig(delimiters=("###",), max_step_tokens=4),
         "no delimiter here", ["open"], ["no d"]),
        (StepConfig(delimiters=(), stop_token_ids=(ord(";"),), max_step_tokens=8),
         "x=1;y", ["open"], ["x=1;"]),
    ],
    ids=["delimiter-ends-step", "eos-ends-answer", "missing-delimiter-uses-step-limit",
         "stop-token-id"],
)
async def test_where_a_step_ends(
    step: StepConfig, text: str, statuses: list[str], texts: list[str]
) -> None:
    ctx, t = context(ScriptedBackend.from_script([text])), tree()
    expansion = await expand(t, [ROOT], ctx, n=1, step=step, sampling=SAMPLING)
    assert [n.status for n in expansion.nodes] == statuses
    assert [n.text for n in expansion.nodes] == texts
    assert [list(n.token_ids) for n in expansion.nodes] == [[ord(ch) for ch in s] for s in texts]


async def test_a_step_that_writes_the_answer_marker_ends_its_path() -> None:
    marked = StepConfig(delimiters=("\n\n",), max_step_tokens=16, answer_marker="Answer:")
    ctx, t = context(ScriptedBackend.from_script(["2+2=4\n\nmore", "Answer: 4\n\nand on"])), tree()
    expansion = await expand(t, [ROOT], ctx, n=2, step=marked, sampling=SAMPLING)
    assert [n.status for n in expansion.nodes] == ["open", "finished"]
    assert expansion.nodes[1].text == "Answer: 4\n\n"  # the whole step is kept
    assert "answer marker" in (expansion.nodes[1].score_reason or "")
    plain = await expand(tree(), [ROOT], context(ScriptedBackend.from_script(
        ["Answer: 4\n\nand on"])), n=1, step=STEP, sampling=SAMPLING)
    assert plain.nodes[0].status == "open"  # without a marker the path goes on


async def test_a_rollout_stops_at_the_answer_marker() -> None:
    marked = StepConfig(delimiters=("\n\n",), max_step_tokens=8, answer_marker="Ans:")
    steps = {"": ["a\n\n"], "a\n\n": ["Ans: 1\n\n"], "a\n\nAns: 1\n\n": ["junk\n\n"]}
    ctx, t = context(path_backend(steps, PROMPT)), tree()
    child = (await expand(t, [ROOT], ctx, n=1, step=marked, sampling=SAMPLING)).nodes[0]
    rolled = await rollout(t, [child.id], ctx, steps=3, step=marked, sampling=SAMPLING)
    assert rolled[child.id].text == "Ans: 1\n\n" and rolled[child.id].finished
    assert len(ctx.backend.requests) == 2  # one expansion, one roll-out step


def test_an_empty_answer_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="answer_marker"):
        StepConfig(answer_marker="")


async def test_a_path_finishes_at_the_chains_token_limit() -> None:
    ctx, t = context(path_backend(lambda path, i, call: "abcdefghijklmnop", PROMPT)), tree()
    sizes, parent = [], ROOT
    while t.node(parent).status == "open":
        expansion = await expand(t, [parent], ctx, n=1, step=STEP, sampling=SAMPLING)
        parent = expansion.nodes[0].id
        sizes.append(t.node(parent).num_tokens)
    assert sizes == [8, 8, 4]  # 20 tokens in all; the last step gets only what is left
    assert t.node(parent).status == "finished"
    assert [r.params.max_tokens for r in ctx.backend.requests] == [8, 8, 4]


async def test_to_end_drops_the_delimiters_and_runs_to_the_chain_limit() -> None:
    ctx, t = context(ScriptedBackend.from_script(["s\n\n", "rest\n\nAnswer: 12"])), tree()
    first = await expand(t, [ROOT], ctx, n=1, step=STEP, sampling=SAMPLING)
    last = await expand(t, [first.nodes[0].id], ctx, n=1, step=STEP, sampling=SAMPLING, to_end=True)
    request = ctx.backend.requests[1]
    assert request.params.stop == () and request.params.max_tokens == 17
    assert last.nodes[0].text == "rest\n\nAnswer: 12" and last.nodes[0].status == "finished"


async def test_what_the_budget_cannot_hold_is_not_submitted() -> None:
    steps = {"": ["aaaa\n\n"] * 3, "aaaa\n\n": ["b\n\n"] * 4, "aaaa\n\nb\n\n": ["c\n\n"]}
    ctx, t = context(path_backend(steps, PROMPT), Budget(generated_tokens=24 + 18 + 8 * 2)), tree()
    first = await expand(t, [ROOT], ctx, n=3, step=STEP, sampling=SAMPLING)  # reserves 24
    assert not first.budget_exhausted and first.usage.generated_tokens == 18
    parents = [n.id for n in first.nodes]
    second = await expand(t, parents, ctx, n=2, step=STEP, sampling=SAMPLING)
    # 58 - 18 spent leaves 40: the first parent gets 2 samples (16), the second 2 (16),
    # the third only one (8): what does not fit is not asked for.
    assert [len(group) for group in second.children] == [2, 2, 1]
    assert second.budget_exhausted and second.exhausted_by == "generated_tokens"
    assert ctx.ledger.spent.generated_tokens == 18 + 5 * 3
    # Settling gave back the unused holds: 25 tokens left hold three 8-token steps of five.
    third = await expand(t, [n.id for n in second.nodes], ctx, n=1, step=STEP, sampling=SAMPLING)
    assert [len(group) for group in third.children] == [1, 1, 1, 0, 0]
    assert third.budget_exhausted and len(ctx.backend.requests) == 1 + 3 + 3


async def test_the_budgets_clock_aborts_running_steps() -> None:
    slow = ScriptedSample("x" * 50, delay=0.01)
    ctx, t = context(ScriptedBackend.from_script([slow, slow]), Budget(seconds=0.05)), tree()
    expansion = await expand(t, [ROOT], ctx, n=2, step=StepConfig(max_step_tokens=100),
                             sampling=SamplingConfig(max_tokens=100))
    assert expansion.timed_out and expansion.exhausted_by == "seconds"
    assert [n.status for n in expansion.nodes] == ["pruned", "pruned"]
    assert all(n.finish_reason == "aborted" and 0 < n.cost < 50 for n in expansion.nodes)
    assert ctx.ledger.spent.cancelled_tokens == t.total_cost


async def test_rollout_is_greedy_charged_to_the_node_and_leaves_the_tree_alone() -> None:
    steps = {"": ["a\n\n"], "a\n\n": ["b\n\n"], "a\n\nb\n\n": ["Ans: 12"]}
    ctx, t = context(path_backend(steps, PROMPT)), tree()
    child = (await expand(t, [ROOT], ctx, n=1, step=STEP, sampling=SAMPLING)).nodes[0]
    rolled = await rollout(t, [child.id], ctx, steps=3, step=STEP, sampling=SAMPLING)
    assert rolled[child.id].text == "b\n\nAns: 12" and rolled[child.id].finished
    assert len(t) == 2 and child.cost == 3 + 3 + 7
    assert [r.params.temperature for r in ctx.backend.requests[1:]] == [0.0, 0.0]  # stopped at EOS
    assert t.total_cost == ctx.ledger.spent.generated_tokens


async def test_only_open_nodes_expand() -> None:
    ctx, t = context(ScriptedBackend.from_script(["12"])), tree()
    done = (await expand(t, [ROOT], ctx, n=1, step=STEP, sampling=SAMPLING)).nodes[0]
    with pytest.raises(BadRequestError, match=f"node {done.id} is finished"):
        await expand(t, [done.id], ctx, n=1, step=STEP, sampling=SAMPLING)
    with pytest.raises(BadRequestError, match="n must be >= 1"):
        await expand(t, [ROOT], ctx, n=0, step=STEP, sampling=SAMPLING)
