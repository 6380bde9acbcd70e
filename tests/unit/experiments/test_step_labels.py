"""Monte Carlo step labels on a scripted tree: where each step ends in token ids, the share
of roll-outs from it that reach the reference, and the paths each head trains on."""

from __future__ import annotations

import random

import pytest

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.core.sampling import SamplingConfig
from ponder.errors import BadRequestError
from ponder.experiments.step_labels import rollout_values, step_boundaries
from ponder.experiments.verifier_training import (
    LabelSettings,
    labelled_paths,
    require_references,
    sample_and_label,
    sampling_strategy,
)
from ponder.runtime import Run
from ponder.verifiers.answers import AnswerExtractor

BACKEND = ScriptedBackend.from_script([])
CHAIN = "Half of 8 is 4.\n\nDouble 4 is 8.\n\nAnswer: 8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("one step", [], id="one-step"),
        pytest.param("a\n\nbb\n\nc", [3, 7], id="three-steps"),
        pytest.param("a\n\n\n\nb", [5], id="empty-step-skipped"),
        pytest.param("\n\na\n\nb\n\n", [5], id="leading-and-trailing-delimiters"),
    ],
)
def test_step_boundaries_are_token_counts_up_to_the_next_step(text: str, expected: list[int]) -> None:
    ids = BACKEND.encode(text)
    boundaries = step_boundaries(ids, BACKEND.decode, "\n\n")
    assert boundaries == expected
    for end in boundaries:  # each prefix ends with the delimiter, before the next step
        assert BACKEND.decode(ids[:end]).endswith("\n\n")


def test_a_token_holding_the_delimiter_and_more_ends_the_prefix() -> None:
    pieces = ["a", "\n\nb", "c"]  # token 1 holds the delimiter and the next step's start

    def decode(ids: list[int]) -> str:
        return "".join(pieces[i] for i in ids)

    assert step_boundaries([0, 1, 2], decode, "\n\n") == [2]


def tree(request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
    """From after step 1, three of four roll-outs reach 8; from after step 2, none does."""
    prefix = BACKEND.decode(request.prompt_token_ids)
    if prefix.endswith("Half of 8 is 4.\n\n"):
        return ScriptedSample("So 4 * 2 = 8.\n\nAnswer: 8" if sample < 3 else "Answer: 7")
    if prefix.endswith("Double 4 is 8.\n\n"):
        return ScriptedSample("Answer: 16")
    return ScriptedSample(CHAIN)


async def test_rollout_values_are_the_share_of_rollouts_reaching_the_reference() -> None:
    backend = ScriptedBackend(tree)
    ctx = Run(backend, Ledger(Budget()), random.Random(0))
    prompt = ctx.render(Problem(prompt="What is double half of 8?"))
    chain = backend.encode(CHAIN)
    boundaries = step_boundaries(chain, backend.decode, "\n\n")
    sampling = SamplingConfig(max_tokens=100)
    values = await rollout_values(
        ctx, prompt, chain, boundaries, "8", rollouts=4, sampling=sampling,
        extractor=AnswerExtractor(),
    )
    assert values == [0.75, 0.0]
    # one request per step, n=k, continuing the chain's own ids, within the chain's length
    assert [r.params.n for r in backend.requests] == [4, 4]
    for request, end in zip(backend.requests, boundaries):
        assert list(request.prompt_token_ids) == [*prompt, *chain[:end]]
        assert request.params.max_tokens == 100 - end
    assert ctx.ledger.spent.model_calls == 2


async def test_rollouts_the_budget_refuses_have_no_value() -> None:
    ctx = Run(ScriptedBackend(tree), Ledger(Budget(generated_tokens=10)), random.Random(0))
    chain = ctx.encode(CHAIN)
    values = await rollout_values(
        ctx, ctx.encode("q"), chain, step_boundaries(chain, ctx.decode, "\n\n"), "8",
        rollouts=4, sampling=SamplingConfig(max_tokens=100), extractor=AnswerExtractor(),
    )
    assert values == [None, None]


async def test_chains_are_labelled_by_grade_and_their_steps_by_rollouts() -> None:
    strategy = sampling_strategy({"name": "self_consistency", "n": 1})
    problems = [Problem(prompt="What is double half of 8?", reference="8", id="p0")]
    chains, spent = await sample_and_label(
        problems, strategy, ScriptedBackend(tree), LabelSettings(rollouts=4, max_steps=None),
        delimiter="\n\n",
    )
    (chain,) = chains
    assert (chain.outcome, chain.step_values) == (1.0, [0.75, 0.0])
    assert chain.steps == ["Half of 8 is 4.", "Double 4 is 8.", "Answer: 8"]
    assert spent.model_calls == 3  # the chain, then one request per labelled step
    outcome = [(count, label) for _, count, label in labelled_paths(chains, "outcome")]
    step = [(count, label) for _, count, label in labelled_paths(chains, "step")]
    assert outcome == [(3, 1.0)]
    assert step == [(1, 0.75), (2, 0.0), (3, 1.0)]  # the last step's label is the grade


async def test_max_steps_labels_only_the_earliest_steps() -> None:
    strategy = sampling_strategy({"name": "self_consistency", "n": 1})
    problems = [Problem(prompt="q", reference="8", id="p0")]
    chains, _ = await sample_and_label(
        problems, strategy, ScriptedBackend(tree), LabelSettings(rollouts=4, max_steps=1),
        delimiter="\n\n",
    )
    assert chains[0].step_values == [0.75]


def test_a_dataset_without_references_is_refused() -> None:
    problems = [Problem(prompt="a", reference="1", id="p0"), Problem(prompt="b", id="p1")]
    with pytest.raises(BadRequestError, match=r"1 of 2 problems have no reference answer \(e.g. 'p1'\)"):
        require_references(problems, "mine")


def test_a_strategy_that_does_not_sample_plain_chains_is_refused() -> None:
    with pytest.raises(BadRequestError, match="does not sample plain chains"):
        sampling_strategy({"name": "beam"})
