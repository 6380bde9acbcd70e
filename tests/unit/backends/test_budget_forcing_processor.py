"""The budget-forcing logits processor, driven as vLLM drives it (``update_state`` with batch
changes, then ``apply`` on each step's logits) by a tiny greedy loop over a scripted model:
endings below the minimum become the continuation, the maximum forces the answer prompt, the
answer limit forces a stop token, and requests that do not ask are left alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest

pytest.importorskip("vllm.v1.sample.logits_processor")

import torch  # noqa: E402
from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402

from ponder.core.forcing import (  # noqa: E402
    FORCING_KEY,
    ForcingArgs,
    continuation_for,
    forced_close,
    marker_variants,
)
from ponder.backends.logits_processors import BudgetForcingProcessor  # noqa: E402

VOCAB = 64
EOS, ANSWER, COLON, SPACE_ANSWER, WAIT, SPACE_WAIT, NEWLINE = 2, 10, 11, 12, 20, 21, 30
WORD = 40  # ordinary thinking tokens are 40, 41, ...
ANSWER_PROMPT = (NEWLINE, ANSWER, COLON)


def forcing(**limits: int) -> ForcingArgs:
    return ForcingArgs(
        min_thinking=limits.get("min_thinking", 0),
        max_thinking=limits.get("max_thinking", 100),
        max_answer=limits.get("max_answer", 50),
        max_continuations=limits.get("max_continuations", 5),
        redirects=((ANSWER, (WAIT,)), (SPACE_ANSWER, (SPACE_WAIT,))),
        stop_continuation=(WAIT,),
        closes=((ANSWER, COLON), (SPACE_ANSWER, COLON)),
        answer_prompt=ANSWER_PROMPT,
    )


def params(args: ForcingArgs | None, temperature: float = 0.0) -> SamplingParams:
    extra = None if args is None else {FORCING_KEY: args.model_dump(mode="json")}
    return SamplingParams(temperature=temperature, stop_token_ids=[EOS], extra_args=extra)


def processor() -> BudgetForcingProcessor:
    config = SimpleNamespace(model_config=SimpleNamespace(seed=0))
    return BudgetForcingProcessor(config, torch.device("cpu"), False)  # type: ignore[arg-type]


Model = Callable[[Sequence[int]], int]
"""A scripted model: the token it prefers after the given output."""


def script(*tokens: int) -> Model:
    """Prefers ``tokens[step]`` at each step, then EOS, whatever was forced before."""
    return lambda output: tokens[len(output)] if len(output) < len(tokens) else EOS


def words(count: int) -> tuple[int, ...]:
    return tuple(WORD + i % 20 for i in range(count))


def run(args: ForcingArgs | None, model: Model, steps: int = 200) -> list[int]:
    """Generate greedily through the processor until EOS."""
    proc, output = processor(), []
    proc.update_state(BatchUpdate(1, removed=[], added=[(0, params(args), [1], output)], moved=[]))
    for _ in range(steps):
        logits = torch.full((1, VOCAB), -5.0)
        logits[0, model(output)] = 5.0
        proc.update_state(None)
        token = int(torch.argmax(proc.apply(logits)[0]))
        output.append(token)
        if token == EOS:
            break
    return output


def test_an_ending_below_the_minimum_becomes_the_continuation() -> None:
    output = run(forcing(min_thinking=6), script(*words(3), ANSWER, *words(4), ANSWER, COLON, 7))
    assert output == [*words(3), WAIT, *words(4), ANSWER, COLON, 7, EOS]


def test_the_marker_after_a_space_becomes_the_continuation_after_a_space() -> None:
    output = run(forcing(min_thinking=4), script(WORD, SPACE_ANSWER, *words(4), EOS))
    assert output[:3] == [WORD, SPACE_WAIT, WORD]


def test_a_stop_token_below_the_minimum_becomes_the_continuation() -> None:
    output = run(forcing(min_thinking=5), script(*words(2), EOS, *words(4), ANSWER, COLON, 7))
    assert output == [*words(2), WAIT, *words(4), ANSWER, COLON, 7, EOS]


def test_endings_are_overridden_at_most_max_continuations_times() -> None:
    model = script(WORD, ANSWER, WORD, ANSWER, WORD, ANSWER, COLON, 7)
    output = run(forcing(min_thinking=50, max_continuations=2), model)
    assert output == [WORD, WAIT, WORD, WAIT, WORD, ANSWER, COLON, 7, EOS]


def test_at_the_maximum_the_answer_prompt_is_forced_and_the_answer_has_its_limit() -> None:
    output = run(forcing(max_thinking=8, max_answer=4), script(*words(30)))
    assert output[:8] == list(words(8))
    assert tuple(output[8:11]) == ANSWER_PROMPT
    assert output[11:] == [*words(14)[11:], EOS]  # EOS is the answer's 4th token
    assert forced_close(output, forcing(max_thinking=8))


def test_the_answer_limit_counts_from_the_models_own_marker() -> None:
    output = run(forcing(max_answer=3), script(*words(5), ANSWER, COLON, *words(10)))
    assert output == [*words(5), ANSWER, COLON, WORD, WORD + 1, EOS]
    assert not forced_close(output, forcing(max_thinking=5))


def test_requests_without_the_args_are_left_alone() -> None:
    model = script(*words(3), ANSWER, COLON, 7)
    assert run(None, model) == [*words(3), ANSWER, COLON, 7, EOS]
    proc = processor()
    proc.update_state(BatchUpdate(2, removed=[], added=[(0, params(None), [1], [])], moved=[]))
    assert proc.rows == {}  # nothing to do per step: apply returns at once
    logits = torch.randn(2, VOCAB)
    assert torch.equal(proc.apply(logits.clone()), logits)


def test_rows_follow_the_batch_when_requests_move_and_leave() -> None:
    proc = processor()
    forced, free = [*words(8)], [*words(3)]
    added = [(0, params(forcing(max_thinking=8)), [1], forced), (1, params(None), [1], free)]
    proc.update_state(BatchUpdate(2, removed=[], added=added, moved=[]))
    proc.update_state(BatchUpdate(2, removed=[], added=[], moved=[(0, 1, MoveDirectionality.SWAP)]))
    logits = proc.apply(torch.zeros(2, VOCAB))
    assert int(torch.argmax(logits[1])) == NEWLINE and torch.isinf(logits[1]).sum() == VOCAB - 1
    assert not torch.isinf(logits[0]).any()
    proc.update_state(BatchUpdate(1, removed=[1], added=[], moved=[]))
    assert proc.rows == {}


def test_with_sampling_the_ending_is_redirected_as_often_as_the_model_would_end() -> None:
    proc, redirected, trials = processor(), 0, 600
    for _ in range(trials):
        output: list[int] = [WORD]
        args = forcing(min_thinking=10)
        proc.update_state(  # a new request in the same slot replaces the last one
            BatchUpdate(1, removed=[], added=[(0, params(args, 1.0), [1], output)], moved=[])
        )
        logits = torch.full((1, VOCAB), -30.0)
        logits[0, ANSWER] = logits[0, WORD] = 0.0  # the model ends half the time
        row = proc.apply(logits)[0]
        if int(torch.argmax(row)) == WAIT:
            redirected += 1
            assert torch.isinf(row).sum() == VOCAB - 1
        else:
            assert row[ANSWER] == float("-inf") and row[EOS] == float("-inf")
            assert row[WORD] == 0.0
    assert 0.42 < redirected / trials < 0.58


def test_invalid_args_are_refused_when_the_request_arrives() -> None:
    bad = forcing().model_dump(mode="json") | {"min_thinking": 9, "max_thinking": 3}
    request = SamplingParams(extra_args={FORCING_KEY: bad})
    with pytest.raises(ValueError, match="min_thinking must be <= max_thinking"):
        BudgetForcingProcessor.validate_params(request)
    BudgetForcingProcessor.validate_params(SamplingParams())  # no args: nothing to check


def test_marker_variants_and_continuations_follow_the_tokenizer() -> None:
    names = {10: "Answer", 11: ":", 12: " Answer", 13: " "}

    def decode(ids: Sequence[int]) -> str:
        return "".join(names[i] for i in ids)

    merged = {"Answer:": [10, 11], " Answer:": [12, 11]}  # the space merges into the word
    assert marker_variants("Answer:", merged.__getitem__, decode) == ((10, 11), (12, 11))
    apart = {"Answer:": [10, 11], " Answer:": [13, 10, 11]}  # the space is its own token
    assert marker_variants("Answer:", apart.__getitem__, decode) == ((10, 11),)
    assert continuation_for(" Answer:", "Wait") == " Wait"
    assert continuation_for("\n\nAnswer:", "Wait") == "\n\nWait"
    assert continuation_for("", "Wait") == " Wait"  # in place of a stop token


def test_args_built_from_a_format_under_a_character_tokenizer() -> None:
    encode = lambda text: [ord(ch) for ch in text]  # noqa: E731
    decode = lambda ids: "".join(chr(i) for i in ids)  # noqa: E731
    args = ForcingArgs.build(
        think_end="Answer:", continuation="Wait", answer_prompt="\nAnswer:", encode=encode,
        decode=decode, min_thinking=4, max_thinking=9, max_answer=3, max_continuations=1,
    )
    assert args.closes == (tuple(encode("Answer:")),)  # " Answer:" is the same after the space
    assert args.redirects == ((ord("A"), tuple(encode("Wait"))),)
    assert args.stop_continuation == tuple(encode(" Wait"))
    assert args.answer_prompt == tuple(encode("\nAnswer:"))
