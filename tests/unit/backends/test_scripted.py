import asyncio
import contextlib

import pytest

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.core.generation import GenerationRequest, GenerationState, SamplingParams
from ponder.errors import BackendError, BadRequestError


def request(prompt: str = "q", **params: object) -> GenerationRequest:
    return GenerationRequest(
        prompt_token_ids=tuple(ord(ch) for ch in prompt), params=SamplingParams(**params)
    )


def texts(state: GenerationState) -> list[str]:
    return [c.text for c in state.completions]


# -- tokenization -----------------------------------------------------------------------
def test_one_character_is_one_token() -> None:
    backend = ScriptedBackend.from_script([])
    assert backend.encode("ab") == [97, 98]
    assert backend.decode(backend.encode("é 2+2")) == "é 2+2"
    rendered = backend.render_chat(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )
    assert backend.decode(rendered) == "system: be brief\nuser: hi\nassistant: "


# -- what is generated ------------------------------------------------------------------
async def test_script_is_handed_out_in_order_across_requests_and_samples() -> None:
    backend = ScriptedBackend.from_script(["a", "b", "c", ScriptedSample("d")])
    first = await backend.generate(request(n=3))
    second = await backend.generate(request())
    assert texts(first) == ["a", "b", "c"]
    assert texts(second) == ["d"]
    assert first.completions[0].token_ids == [97]
    assert [c.finish_reason for c in first.completions] == ["stop"] * 3


async def test_handler_sees_request_sample_and_call_index() -> None:
    seen: list[tuple[int, int, int]] = []

    def handler(req: GenerationRequest, sample_index: int, call_index: int) -> ScriptedSample:
        seen.append((req.params.n, sample_index, call_index))
        return ScriptedSample(f"{call_index}.{sample_index}")

    backend = ScriptedBackend(handler)
    await backend.generate(request(n=2))
    state = await backend.generate(request(n=1))
    assert seen == [(2, 0, 0), (2, 1, 0), (1, 0, 1)]
    assert texts(state) == ["1.0"]


async def test_requests_are_recorded() -> None:
    backend = ScriptedBackend.from_script(["x", "y"])
    submitted = [request("one"), request("two", temperature=0.2)]
    for req in submitted:
        await backend.generate(req)
    assert backend.requests == submitted


async def test_running_out_of_script_raises_backend_error() -> None:
    backend = ScriptedBackend.from_script(["only"])
    await backend.generate(request())
    with pytest.raises(BackendError, match="the script ran out: it has 1 samples, and request 1"):
        await backend.generate(request())


async def test_max_tokens_truncates_with_finish_length() -> None:
    backend = ScriptedBackend.from_script(["abcdef", "abc"])
    state = await backend.generate(request(n=2, max_tokens=3))
    assert texts(state) == ["abc", "abc"]
    assert [c.finish_reason for c in state.completions] == ["length", "stop"]
    assert state.completions[0].stop_reason is None


async def test_scripted_finish_and_stop_reason_are_kept() -> None:
    sample = ScriptedSample("ab", finish_reason="length")
    eos = ScriptedSample("cd", stop_reason=0)
    state = await ScriptedBackend.from_script([sample, eos]).generate(request(n=2))
    assert [(c.finish_reason, c.stop_reason) for c in state.completions] == [
        ("length", None),
        ("stop", 0),
    ]


@pytest.mark.parametrize(
    ("stop", "include", "max_tokens", "text", "finish", "reason"),
    [
        (("\n\n",), False, 100, "step one", "stop", "\n\n"),
        (("\n\n",), True, 100, "step one\n\n", "stop", "\n\n"),
        (("one", " "), False, 100, "step", "stop", " "),
        (("\n\n",), False, 9, "step one\n", "length", None),
        (("\n\n",), False, 10, "step one", "stop", "\n\n"),
        (("zzz",), False, 100, "step one\n\nstep two", "stop", None),
    ],
    ids=[
        "excluded",
        "included",
        "earliest-wins",
        "max-tokens-first",
        "stop-just-fits",
        "absent",
    ],
)
async def test_stop_strings(
    stop: tuple[str, ...],
    include: bool,
    max_tokens: int,
    text: str,
    finish: str,
    reason: str | None,
) -> None:
    backend = ScriptedBackend.from_script(["step one\n\nstep two"])
    state = await backend.generate(
        request(stop=stop, include_stop_str_in_output=include, max_tokens=max_tokens)
    )
    (completion,) = state.completions
    assert completion.text == text
    assert backend.decode(completion.token_ids) == text
    assert (completion.finish_reason, completion.stop_reason) == (finish, reason)


async def test_stop_token_ids_end_the_sample_keeping_the_token() -> None:
    state = await ScriptedBackend.from_script(["a;b"]).generate(request(stop_token_ids=(59,)))
    (completion,) = state.completions
    assert (completion.text, completion.finish_reason, completion.stop_reason) == ("a;", "stop", 59)


@pytest.mark.parametrize(
    ("sample", "asked", "expected"),
    [
        (ScriptedSample("abc", logprobs=[-0.1, -0.2, -0.3]), 0, [-0.1, -0.2, -0.3]),
        (ScriptedSample("abc"), 2, [0.0, 0.0, 0.0]),
        (ScriptedSample("abc", logprobs=[-0.1, -0.2, -0.3]), None, None),
    ],
    ids=["scripted", "defaults-to-zero", "not-asked"],
)
async def test_logprobs(sample: ScriptedSample, asked: int | None, expected: list | None) -> None:
    state = await ScriptedBackend.from_script([sample]).generate(request(logprobs=asked))
    (completion,) = state.completions
    assert completion.logprobs == expected
    if expected is not None:
        assert completion.top_logprobs == [{97: expected[0]}, {98: expected[1]}, {99: expected[2]}]


async def test_logprobs_are_cut_with_the_text() -> None:
    sample = ScriptedSample("abcd", logprobs=[-1.0, -2.0, -3.0, -4.0])
    state = await ScriptedBackend.from_script([sample]).generate(request(max_tokens=2, logprobs=0))
    assert state.completions[0].logprobs == [-1.0, -2.0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "ab", "logprobs": [-1.0]}, "one value per token .* 2 tokens, got 1"),
        ({"text": "ab", "delay": -1.0}, "delay must be >= 0, got -1.0"),
    ],
    ids=["logprobs-length", "negative-delay"],
)
def test_scripted_sample_validation(fields: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        ScriptedSample(**fields)


# -- streaming and timing ---------------------------------------------------------------
async def test_samples_stream_interleaved_token_by_token() -> None:
    backend = ScriptedBackend.from_script(["abc", "xy", ""])
    snapshots = [texts(state) async for state in backend.stream(request(n=3))]
    assert snapshots == [["a", "x", ""], ["ab", "xy", ""], ["abc", "xy", ""]]


async def test_a_fast_sample_finishes_before_a_slow_one() -> None:
    slow, fast = ScriptedSample("slow", delay=0.01), ScriptedSample("fast", delay=0.002)
    backend = ScriptedBackend.from_script([slow, fast])
    finished: list[int] = []
    async for state in backend.stream(request(n=2)):
        finished += [c.index for c in state.completions if c.finished and c.index not in finished]
    assert finished == [1, 0]
    assert state.usage.wall_seconds >= 0.04


async def test_concurrent_requests_finish_in_order_of_their_delays() -> None:
    backend = ScriptedBackend(
        lambda req, i, call: ScriptedSample("abc", delay=0.001 if call == 1 else 0.01)
    )
    order: list[int] = []

    async def run(call: int) -> None:
        await backend.generate(request(str(call)))
        order.append(call)

    await asyncio.gather(run(0), run(1))
    assert order == [1, 0]


# -- cancellation -----------------------------------------------------------------------
async def test_closing_the_stream_aborts_and_counts_cancelled_tokens() -> None:
    backend = ScriptedBackend.from_script(["abcdef", "ab"])
    async with contextlib.aclosing(backend.stream(request(n=2))) as stream:
        steps = 0
        async for state in stream:
            steps += 1
            if steps == 3:
                break
    assert texts(state) == ["abc", "ab"]
    assert [c.finish_reason for c in state.completions] == ["aborted", "stop"]
    assert backend.usage.cancelled_tokens == 3
    assert backend.usage.generated_tokens == 5


async def test_cancelling_the_consumer_task_aborts_the_request() -> None:
    backend = ScriptedBackend.from_script([ScriptedSample("x" * 1000, delay=0.005)])
    seen: list[GenerationState] = []

    async def consume() -> None:
        async for state in backend.stream(request()):
            seen.append(state)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (completion,) = seen[-1].completions
    assert completion.finish_reason == "aborted"
    assert 0 < completion.num_tokens < 1000
    assert backend.usage.cancelled_tokens == completion.num_tokens


# -- prefix caching ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("block_size", "expected"),
    [(1, [0, 8, 12, 0]), (5, [0, 5, 10, 0])],
    ids=["block-1", "block-5"],
)
async def test_cached_prompt_tokens_are_the_longest_shared_prefix(
    block_size: int, expected: list[int]
) -> None:
    backend = ScriptedBackend(lambda req, i, call: ScriptedSample("ok"), block_size=block_size)
    prompts = ["the problem A", "the probe", "the problem B", "other"]
    cached = [(await backend.generate(request(p))).cached_prompt_tokens for p in prompts]
    assert cached == expected
    assert backend.usage.cached_prompt_tokens == sum(expected)
    assert backend.usage.prompt_tokens == sum(len(p) for p in prompts)


def test_block_size_must_be_positive() -> None:
    with pytest.raises(BadRequestError, match="block_size must be >= 1, got 0"):
        ScriptedBackend.from_script([], block_size=0)
