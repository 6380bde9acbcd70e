"""The Python entry points over the scripted backend: specs in every accepted form,
validation before any engine work, the sync wrapper's guard, and backends from the pool that
``shutdown`` closes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder import Budget, Problem, asolve, shutdown, solve
from ponder.backends.pool import engines
from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.errors import BadRequestError


async def test_asolve_takes_names_and_mappings() -> None:
    backend = ScriptedBackend.from_script(["Answer: 4", "Answer: 4", "Answer: 5"])
    result = await asolve(
        {"prompt": "What is 2 + 2?", "reference": "4"},
        strategy={"name": "self_consistency", "n": 3},
        backend=backend,
        budget={"generated_tokens": 1000, "seconds": None},
    )
    assert result.answer == "4"
    assert result.usage.generated_tokens == 27
    assert result.usage.wall_seconds > 0


async def test_the_seed_makes_request_seeds_reproducible() -> None:
    seeds = []
    for _ in range(2):
        backend = ScriptedBackend.from_script(["Answer: 1"] * 2)
        await asolve(Problem(prompt="q"), strategy={"name": "self_consistency", "n": 2}, backend=backend, seed=7)
        seeds.append(backend.requests[0].params.seed)
    assert seeds[0] == seeds[1] is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "nonesuch"}, "unknown strategy 'nonesuch'"),
        ({"budget": Budget(model_calls=1), "strategy": {"name": "best_of_n", "verifier": "oracle"}}, "unknown verifier"),
        ({"budget": {"total_tokens": -1}}, "budget.total_tokens"),
        ({"budget": {"tokens": 5}}, "budget.tokens: unknown parameter"),
    ],
    ids=["unknown-strategy", "unknown-verifier", "negative-limit", "unknown-limit"],
)
async def test_bad_specs_fail_before_the_backend_is_used(kwargs: dict, message: str) -> None:
    backend = ScriptedBackend.from_script([])
    with pytest.raises(BadRequestError, match=message):
        await asolve("q", backend=backend, **kwargs)
    assert backend.requests == []


BLANK = "must not be empty or only whitespace"

BAD_PROBLEMS = [
    ("empty", "", f"problem.prompt: {BLANK}$"),
    ("whitespace", " \n\t", f"problem.prompt: {BLANK}$"),
    ("empty-message", {"messages": [{"role": "user", "content": ""}]},
     rf"problem.messages.0.content: {BLANK}$"),
    ("whitespace-message", {"messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "   "}]},
     rf"problem.messages.1.content: {BLANK}$"),
    ("both-prompt-and-messages", {"prompt": "q", "messages": [{"role": "user", "content": "q"}]},
     "exactly one"),
    ("no-user-turn", {"messages": [{"role": "system", "content": "be brief"}]},
     "at least one user message"),
]


@pytest.mark.parametrize(("problem", "message"), [c[1:] for c in BAD_PROBLEMS],
                         ids=[c[0] for c in BAD_PROBLEMS])
async def test_bad_problems_are_bad_requests(problem: object, message: str) -> None:
    backend = ScriptedBackend.from_script([])
    with pytest.raises(BadRequestError, match=message):
        await asolve(problem, backend=backend)
    assert backend.requests == []


@pytest.mark.parametrize(("problem", "message"), [c[1:] for c in BAD_PROBLEMS[:4]],
                         ids=[c[0] for c in BAD_PROBLEMS[:4]])
def test_solve_refuses_blank_text_as_asolve_does(problem: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        solve(problem, backend=ScriptedBackend.from_script([]))


@pytest.mark.parametrize("text", ["", " ", "\n\t"], ids=["empty", "space", "newline-tab"])
def test_problem_and_message_refuse_blank_text(text: str) -> None:
    with pytest.raises(ValidationError, match=BLANK):
        Problem(prompt=text)
    with pytest.raises(ValidationError, match=BLANK):
        Problem(messages=[{"role": "user", "content": text}])


async def test_solve_refuses_to_run_inside_an_event_loop() -> None:
    with pytest.raises(BadRequestError, match="use `await asolve"):
        solve("q", backend=ScriptedBackend.from_script([]))


def test_solve_runs_synchronously() -> None:
    result = solve("q", strategy={"name": "self_consistency", "n": 1}, backend=ScriptedBackend.from_script(["Answer: 9"]))
    assert result.answer == "9"


class ClosingBackend(ScriptedBackend):
    def __init__(self) -> None:
        super().__init__(lambda request, sample, call: ScriptedSample("Answer: 4"))
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def test_one_backend_config_builds_one_backend_and_shutdown_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[ClosingBackend] = []

    async def open_backend(spec: object) -> ClosingBackend:
        built.append(ClosingBackend())
        return built[-1]

    monkeypatch.setattr("ponder.backends.pool.open_backend", open_backend)
    spec = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    for _ in range(3):
        assert solve("q", strategy={"name": "self_consistency", "n": 1}, backend=spec).answer == "4"
    assert len(built) == 1 and len(built[0].requests) == 3
    shutdown()
    assert built[0].closed and len(engines) == 0
    solve("q", strategy={"name": "self_consistency", "n": 1}, backend=spec)
    assert len(built) == 2  # a later call builds anew
    shutdown()


async def test_shutdown_inside_an_event_loop_says_what_to_await() -> None:
    with pytest.raises(BadRequestError, match="engines.close"):
        shutdown()
