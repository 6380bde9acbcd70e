"""Beam search and DVTS on the real engine with the embedded model: arithmetic solved end to
end through step expansion and step scoring, usage that adds up to the tree and the engine,
and continuation requests served from the prefix cache."""

from __future__ import annotations

import dataclasses

import pytest

from ponder import asolve
from ponder.backends.vllm_engine import VllmBackend
from ponder.search import SearchTree, StepConfig
from ponder.strategies import BeamSearch, DiverseVerifierTreeSearch, SamplingConfig
from ponder.strategies.beam import StepSearch
from ponder.verifiers import StepJudge

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SYSTEM_PROMPT = (
    "Solve the problem step by step. Write each step on its own line, leave a blank line "
    "between steps, and end with 'Answer: <number>'.\n\n"
    "Example.\nQuestion: What is 3 times 4?\n\n"
    "Step 1: 3 times 4 means adding 3 four times: 3 + 3 + 3 + 3.\n\n"
    "Step 2: 3 + 3 + 3 + 3 = 12.\n\nAnswer: 12\n\n"
    "Example.\nQuestion: What is 15 + 27?\n\n"
    "Step 1: 15 + 27 = 15 + 20 + 7.\n\nStep 2: 15 + 20 = 35, and 35 + 7 = 42.\n\nAnswer: 42"
)
"""Worked examples show the model what a step is; they also make the prompt longer than one
128-token KV block (the CPU engine's block size), so continuations can hit the cache."""

CPU_BLOCK = 128
QUESTIONS = ["What is 6 times 2?", "What is 17 + 25?"]
SEARCH = {
    "n": 4, "beam_width": 2, "max_steps": 3, "system_prompt": SYSTEM_PROMPT,
    "sampling": SamplingConfig(max_tokens=120), "step": StepConfig(max_step_tokens=40),
}


@pytest.mark.parametrize(
    "strategy",
    [
        BeamSearch(**SEARCH, verifier="step_judge"),
        DiverseVerifierTreeSearch(**SEARCH, verifier="self_certainty"),
    ],
    ids=["beam-step-judge", "dvts-self-certainty"],
)
async def test_search_solves_arithmetic_with_usage_that_adds_up(
    engine: VllmBackend, strategy: StepSearch
) -> None:
    continued = 0
    for question in QUESTIONS:
        before = dataclasses.replace(engine.usage)
        result = await asolve(question, strategy=strategy, backend=engine)
        tree, usage = result.tree, result.usage
        engine_calls = engine.usage.model_calls - before.model_calls
        engine_tokens = engine.usage.generated_tokens - before.generated_tokens

        assert result.candidates and result.answer is not None, [c.text for c in result.candidates]
        assert all(c.finish_reason is not None for c in result.candidates)
        assert result.details["finished"] == len(result.candidates)
        # Model calls are the expansions; the judge's one-token requests are verifier calls.
        assert usage.model_calls == result.details["nodes_expanded"]
        judged = engine_calls - usage.model_calls
        assert (judged > 0) == isinstance(strategy.verifier, StepJudge)
        assert usage.generated_tokens == engine_tokens == tree.total_cost + judged
        # Every request after the first steps continues a prompt whose first block is cached.
        # (Sampling is not seeded per request on CPU: now and then every path of a question
        # answers in its first step, so continuations are counted over all the questions.)
        continuations = [n for n in tree.nodes() if tree.children(n.id)]
        continued += len(continuations)
        assert usage.cached_prompt_tokens >= CPU_BLOCK * len(continuations)
        assert SearchTree.from_dict(result.to_dict()["tree"]) == tree
    assert continued > 0
    assert engine.engine.get_num_unfinished_requests() == 0



async def test_the_answer_marker_ends_paths_on_the_engine(engine: VllmBackend) -> None:
    # A full stop stands in for an answer marker: nearly every step the model writes has one,
    # while whether it writes on after "Answer: ..." is chance.
    marked = StepConfig(max_step_tokens=40, answer_marker=".")
    strategy = BeamSearch(**{**SEARCH, "step": marked}, verifier="self_certainty")
    ended_by_marker = 0
    for question in QUESTIONS:
        tree = (await asolve(question, strategy=strategy, backend=engine)).tree
        for node in tree.nodes():
            if "." in node.text:  # the path ends at that step
                assert node.status in ("finished", "pruned") and not tree.children(node.id)
        # A step that ended at a delimiter, short of the chain's limit, yet finished its path:
        # only the marker does that.
        ended_by_marker += sum(
            n.status == "finished" and n.stop_reason in marked.delimiters
            and tree.generated_tokens(n.id) < SEARCH["sampling"].max_tokens
            for n in tree.nodes()
        )
    assert ended_by_marker > 0
