"""Search strategies and their step generator: the default samples each parent's children in
one request (plain sampling); speculative steps write each child with its own calls (the
model drafts, rates and, if it must, rewrites), all calls of a step at once, the budget
refusing the steps it cannot hold."""

from __future__ import annotations

from collections import Counter

from search_helpers import PROBLEM, SCORES, STEPS, PathScores, context, path_backend

from ponder.budgets import Budget
from ponder.search.expansion import StepConfig
from ponder.strategies import BeamSearch, DiverseVerifierTreeSearch, SamplingConfig
from ponder.strategies.step_generators import SpeculativeSteps, StepGenerator

FIELDS = {"n": 4, "beam_width": 2, "max_steps": 3, "sampling": SamplingConfig(max_tokens=64),
          "verifier": PathScores(table=SCORES), "selection": "argmax"}
SPECULATIVE = SpeculativeSteps(threshold=0.0)
"""The run's own model drafts; a rating of 0 or more keeps the draft."""


def one_call_per_child():
    """The next child's step at each path, in the order the calls come; a rating prompt
    gets a 9."""
    asked: Counter[str] = Counter()

    def step(path: str, sample: int, call: int) -> str:
        if path.endswith(SPECULATIVE.judge_reply):
            return "9"
        asked[path] += 1
        return STEPS[path][asked[path] - 1]

    return path_backend(step)


async def test_the_default_step_generator_is_plain_sampling() -> None:
    plain_ctx, named_ctx = context(path_backend(STEPS)), context(path_backend(STEPS))
    plain = await BeamSearch(**FIELDS).run(PROBLEM, plain_ctx)
    named = await BeamSearch(**FIELDS, step_generator="sample").run(PROBLEM, named_ctx)
    assert BeamSearch(**FIELDS).step_generator == StepGenerator()
    assert plain.tree.to_dict() == named.tree.to_dict()
    assert [r.params.n for r in named_ctx.backend.requests] == [4, 2, 2, 2, 2]
    assert named.answer == plain.answer == "13"


async def test_speculative_steps_write_the_tree_plain_sampling_writes() -> None:
    sampled = await BeamSearch(**FIELDS).run(PROBLEM, context(path_backend(STEPS)))
    ctx = context(one_call_per_child())
    generated = await BeamSearch(**FIELDS, step_generator=SPECULATIVE).run(PROBLEM, ctx)
    tree, reference = generated.tree, sampled.tree
    assert [tree.text(n.id) for n in tree.nodes()] == [reference.text(n.id) for n in reference.nodes()]
    assert [n.status for n in tree.nodes()] == [n.status for n in reference.nodes()]
    assert generated.answer == sampled.answer == "13"
    # One request per child and call: 8 drafted steps and their 8 ratings, then 4 answers.
    assert [r.params.n for r in ctx.backend.requests] == [1] * 20
    authors = Counter(n.meta["author"] for n in tree.nodes() if n.parent is not None)
    assert authors == {"draft": 8, "base": 4}
    assert generated.usage.model_calls == 12
    assert generated.usage.verifier_calls == sampled.usage.verifier_calls + 8  # the ratings
    ratings = sum(1 for r in ctx.backend.requests if r.params.max_tokens == 1)
    assert generated.usage.generated_tokens == tree.total_cost + ratings


async def test_dvts_takes_a_step_generator_too() -> None:
    ctx = context(one_call_per_child())
    dvts = DiverseVerifierTreeSearch(**FIELDS, step_generator=SPECULATIVE)
    result = await dvts.run(PROBLEM, ctx)
    assert result.answer == "13"
    assert all(r.params.n == 1 for r in ctx.backend.requests)


async def test_a_step_the_budget_refuses_ends_the_search_with_the_best_so_far() -> None:
    # Five drafting calls: the root's four children, then one of the next step's four.
    ctx = context(one_call_per_child(), Budget(model_calls=5))
    result = await BeamSearch(**FIELDS, step_generator=SPECULATIVE).run(PROBLEM, ctx)
    assert result.budget_exhausted and result.exhausted_by == "model_calls"
    assert len(result.tree.nodes()) == 5
    assert result.usage.model_calls == 5
    assert result.details["steps"] == 2
    assert [c.text for c in result.candidates] == ["C\n\n", "A\n\nA1\n\n"]


async def test_the_answer_marker_ends_a_path_whoever_writes_its_steps() -> None:
    marked = {**FIELDS, "step": StepConfig(answer_marker="B")}
    sampled = await BeamSearch(**marked).run(PROBLEM, context(path_backend(STEPS)))
    generated = await BeamSearch(**marked, step_generator=SPECULATIVE).run(
        PROBLEM, context(one_call_per_child())
    )
    for result in (sampled, generated):
        (marker_step,) = [n for n in result.tree.nodes() if n.text == "B\n\n"]
        assert marker_step.status == "finished"
        assert "B\n\n" in [c.text for c in result.candidates]
