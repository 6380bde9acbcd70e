import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.budgets import Budget, Ledger, Reservation
from ponder.core.usage import Usage
from ponder.errors import BadRequestError, BudgetExhaustedError, UnknownNameError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def used(generated: int = 0, prompt: int = 0, calls: int = 0, verifier_calls: int = 0) -> Usage:
    return Usage(
        generated_tokens=generated,
        prompt_tokens=prompt,
        model_calls=calls,
        verifier_calls=verifier_calls,
    )


# -- reserve, settle, release -----------------------------------------------------------
def test_reserve_holds_and_settle_charges_the_actual_usage() -> None:
    ledger = Ledger(Budget(generated_tokens=1000, model_calls=4))
    held = ledger.reserve(generated_tokens=300, prompt_tokens=20, model_calls=1)
    assert ledger.remaining("generated_tokens") == 700
    assert ledger.remaining("model_calls") == 3
    assert ledger.spent.generated_tokens == 0

    held.settle(used(generated=120, prompt=20, calls=1))
    assert ledger.remaining("generated_tokens") == 880
    assert ledger.remaining("model_calls") == 3
    spent = ledger.spent
    assert (spent.generated_tokens, spent.prompt_tokens, spent.model_calls) == (120, 20, 1)
    assert held.closed_as == "settled"


def test_release_gives_everything_back() -> None:
    ledger = Ledger(Budget(generated_tokens=1000, verifier_calls=2), clock=FakeClock())
    held = ledger.reserve(generated_tokens=1000, verifier_calls=2)
    assert ledger.remaining("generated_tokens") == 0
    held.release()
    assert ledger.remaining("generated_tokens") == 1000
    assert ledger.remaining("verifier_calls") == 2
    assert ledger.spent == Usage()


def test_total_tokens_count_prompt_and_generated() -> None:
    ledger = Ledger(Budget(total_tokens=1000))
    ledger.reserve(generated_tokens=400, prompt_tokens=100)
    assert ledger.remaining("total_tokens") == 500
    with pytest.raises(BudgetExhaustedError, match="total_tokens budget: 600 requested, 500 left"):
        ledger.reserve(generated_tokens=300, prompt_tokens=300)


def test_unlimited_ledger_records_usage() -> None:
    ledger = Ledger(Budget.unlimited())
    ledger.reserve(generated_tokens=10**9, model_calls=10**6).settle(used(generated=7, calls=1))
    assert ledger.remaining("generated_tokens") is None
    assert ledger.seconds_left() is None
    assert not ledger.expired
    assert ledger.spent.generated_tokens == 7


@pytest.mark.parametrize("second", ["settle", "release"])
@pytest.mark.parametrize("first", ["settle", "release"])
def test_a_reservation_closes_once(first: str, second: str) -> None:
    held = Ledger(Budget(model_calls=2)).reserve(model_calls=1)

    def close(how: str) -> None:
        held.settle(used(calls=1)) if how == "settle" else held.release()

    close(first)
    with pytest.raises(RuntimeError, match=f"already {first}d"):
        close(second)


def test_context_manager_releases_an_unsettled_reservation() -> None:
    ledger = Ledger(Budget(generated_tokens=100))
    with pytest.raises(KeyError):
        with ledger.reserve(generated_tokens=60) as held:
            assert isinstance(held, Reservation)
            raise KeyError("work failed before it was settled")
    assert held.closed_as == "released"
    assert ledger.remaining("generated_tokens") == 100

    with ledger.reserve(generated_tokens=60) as held:
        held.settle(used(generated=50))
    assert ledger.remaining("generated_tokens") == 50


def test_overuse_is_charged_honestly() -> None:
    ledger = Ledger(Budget(generated_tokens=100))
    ledger.reserve(generated_tokens=50).settle(used(generated=130))
    assert ledger.spent.generated_tokens == 130
    assert ledger.remaining("generated_tokens") == 0
    assert ledger.try_reserve(generated_tokens=1) is None
    assert ledger.try_reserve() is not None  # nothing asked, nothing refused


def test_charge_without_reservation_counts_against_limits() -> None:
    ledger = Ledger(Budget(verifier_calls=3))
    ledger.charge(used(verifier_calls=2))
    assert ledger.remaining("verifier_calls") == 1
    assert ledger.spent.verifier_calls == 2


# -- refusal ----------------------------------------------------------------------------
def test_refusal_names_the_limit_and_flags_the_ledger() -> None:
    ledger = Ledger(Budget(generated_tokens=4000))
    ledger.reserve(generated_tokens=3700)
    assert not ledger.exhausted and ledger.exhausted_by is None
    with pytest.raises(
        BudgetExhaustedError, match=r"^generated_tokens budget: 512 requested, 300 left of 4000$"
    ):
        ledger.reserve(generated_tokens=512)
    assert ledger.exhausted
    assert ledger.exhausted_by == "generated_tokens"


def test_try_reserve_returns_none_and_flags() -> None:
    ledger = Ledger(Budget(model_calls=1))
    assert ledger.try_reserve(model_calls=1) is not None
    assert ledger.try_reserve(model_calls=1) is None
    assert ledger.exhausted_by == "model_calls"


def test_refusal_is_all_or_nothing() -> None:
    ledger = Ledger(Budget(generated_tokens=1000, model_calls=1))
    ledger.reserve(model_calls=1)
    assert ledger.try_reserve(generated_tokens=100, model_calls=1) is None
    assert ledger.remaining("generated_tokens") == 1000


@pytest.mark.parametrize(
    "amounts",
    [{"generated_tokens": -1}, {"prompt_tokens": -2}, {"model_calls": -1}, {"verifier_calls": -9}],
    ids=lambda a: next(iter(a)),
)
def test_negative_amounts_are_bad_requests(amounts: dict[str, int]) -> None:
    name, value = next(iter(amounts.items()))
    with pytest.raises(BadRequestError, match=f"{name} must be >= 0, got {value}"):
        Ledger(Budget()).reserve(**amounts)


def test_remaining_of_an_unknown_limit() -> None:
    with pytest.raises(UnknownNameError, match="unknown limit 'tokens'"):
        Ledger(Budget()).remaining("tokens")


# -- child ledgers ----------------------------------------------------------------------
def test_child_usage_counts_against_every_ancestor() -> None:
    root = Ledger(Budget(generated_tokens=1000))
    middle = root.child(Budget(generated_tokens=600))
    leaf = middle.child()
    held = leaf.reserve(generated_tokens=200)
    assert [ledger.remaining("generated_tokens") for ledger in (root, middle, leaf)] == [
        800,
        400,
        400,
    ]
    held.settle(used(generated=150))
    assert [ledger.spent.generated_tokens for ledger in (root, middle, leaf)] == [150, 150, 150]
    assert root.remaining("generated_tokens") == 850


def test_child_is_capped_by_what_the_parent_has_left() -> None:
    root = Ledger(Budget(generated_tokens=1000))
    sibling, child = root.child(), root.child(Budget(generated_tokens=5000))
    sibling.reserve(generated_tokens=700)
    assert child.remaining("generated_tokens") == 300
    with pytest.raises(BudgetExhaustedError, match="400 requested, 300 left of 1000"):
        child.reserve(generated_tokens=400)
    assert child.exhausted_by == "generated_tokens"
    assert not root.exhausted and not sibling.exhausted


def test_child_own_limit_binds_first() -> None:
    child = Ledger(Budget(model_calls=10)).child(Budget(model_calls=2))
    child.reserve(model_calls=2)
    with pytest.raises(BudgetExhaustedError, match="model_calls budget: 1 requested, 0 left of 2"):
        child.reserve(model_calls=1)


# -- seconds ----------------------------------------------------------------------------
def test_seconds_follow_the_injected_clock() -> None:
    clock = FakeClock()
    ledger = Ledger(Budget(seconds=10), clock=clock)
    assert ledger.seconds_left() == 10
    clock.now += 4
    assert ledger.seconds_left() == 6
    assert ledger.spent.wall_seconds == 4
    assert not ledger.expired
    clock.now += 6
    assert ledger.expired
    assert ledger.seconds_left() == 0
    with pytest.raises(BudgetExhaustedError, match="seconds budget: 10 s elapsed of 10"):
        ledger.reserve(model_calls=1)
    assert ledger.exhausted_by == "seconds"


def test_child_deadline_is_the_earliest_in_its_line() -> None:
    clock = FakeClock()
    root = Ledger(Budget(seconds=10), clock=clock)
    clock.now += 7
    child = root.child(Budget(seconds=5))  # its own 5 s start now, but the root ends in 3
    assert child.seconds_left() == 3
    clock.now += 3
    assert child.expired
    assert child.try_reserve(verifier_calls=1) is None
    assert child.exhausted_by == "seconds"
    assert Ledger(Budget(), clock=clock).child(Budget(seconds=2)).seconds_left() == 2


# -- fit_samples ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("budget", "n", "max_tokens", "prompt_tokens", "expected"),
    [
        (Budget(), 16, 512, 100, 16),
        (Budget(generated_tokens=1000), 8, 300, 50, 3),
        (Budget(generated_tokens=1000), 2, 300, 50, 2),
        (Budget(total_tokens=1000), 8, 300, 100, 3),
        (Budget(total_tokens=1000), 8, 300, 200, 2),
        (Budget(total_tokens=100), 8, 10, 150, 0),
        (Budget(generated_tokens=299), 8, 300, 0, 0),
        (Budget(generated_tokens=1000), 0, 300, 0, 0),
        (Budget(verifier_calls=1), 4, 64, 10, 4),
    ],
    ids=[
        "unlimited",
        "generated-caps",
        "n-caps",
        "total-caps",
        "prompt-counts-once",
        "prompt-too-long",
        "not-one-sample",
        "none-asked",
        "other-limit-irrelevant",
    ],
)
def test_fit_samples(
    budget: Budget, n: int, max_tokens: int, prompt_tokens: int, expected: int
) -> None:
    ledger = Ledger(budget)
    assert ledger.fit_samples(n, max_tokens, prompt_tokens) == expected
    assert ledger.remaining("generated_tokens") == budget.generated_tokens  # reserved nothing


def test_fit_samples_sees_holds_calls_and_deadlines() -> None:
    clock = FakeClock()
    ledger = Ledger(Budget(generated_tokens=1000, model_calls=2, seconds=5), clock=clock)
    ledger.reserve(generated_tokens=500, model_calls=1)
    assert ledger.fit_samples(8, 100, 0) == 5
    ledger.reserve(model_calls=1)
    assert ledger.fit_samples(8, 100, 0) == 0
    assert not ledger.exhausted  # a query never flags


def test_fit_samples_zero_after_deadline() -> None:
    clock = FakeClock()
    ledger = Ledger(Budget(seconds=5), clock=clock)
    clock.now += 5
    assert ledger.fit_samples(8, 100, 0) == 0


def test_fit_samples_rejects_bad_arguments() -> None:
    ledger = Ledger(Budget())
    with pytest.raises(BadRequestError, match="max_tokens must be >= 1, got 0"):
        ledger.fit_samples(4, 0, 10)
    with pytest.raises(BadRequestError, match="n must be >= 0, got -1"):
        ledger.fit_samples(-1, 10, 10)


limits = st.none() | st.integers(1, 5000)


@settings(max_examples=200, deadline=None)
@given(
    generated=limits,
    total=limits,
    parent_generated=limits,
    held=st.integers(0, 3000),
    n=st.integers(0, 64),
    max_tokens=st.integers(1, 600),
    prompt_tokens=st.integers(0, 800),
)
def test_fit_samples_is_the_largest_batch_reserve_accepts(
    generated: int | None,
    total: int | None,
    parent_generated: int | None,
    held: int,
    n: int,
    max_tokens: int,
    prompt_tokens: int,
) -> None:
    parent = Ledger(Budget(generated_tokens=parent_generated))
    parent.try_reserve(generated_tokens=held)
    ledger = parent.child(Budget(generated_tokens=generated, total_tokens=total))
    fit = ledger.fit_samples(n, max_tokens, prompt_tokens)
    assert 0 <= fit <= n

    def fits(k: int) -> bool:
        probe = Ledger(Budget(), parent=ledger)  # probing a child never flags `ledger`
        reservation = probe.try_reserve(
            generated_tokens=k * max_tokens, prompt_tokens=prompt_tokens, model_calls=1
        )
        if reservation is not None:
            reservation.release()
        return reservation is not None

    if fit > 0:
        assert fits(fit)
    if fit < n:
        assert not fits(fit + 1)


# -- concurrency ------------------------------------------------------------------------
LIMITED = ("generated_tokens", "total_tokens", "model_calls")


def assert_within_limits(ledgers: list[Ledger]) -> None:
    """Spent, and spent plus everything held, never exceed any ledger's limits."""
    for ledger in ledgers:
        spent = ledger.spent
        for name in LIMITED:
            limit = getattr(ledger.budget, name)
            if limit is not None:
                assert getattr(spent, name) <= limit
                assert ledger.remaining(name) is not None and ledger.remaining(name) >= 0


async def branch(ledger: Ledger, rng: random.Random, everyone: list[Ledger]) -> bool:
    """One concurrent piece of work: reserve, 'run', settle with at most what was held."""
    generated, prompt = rng.randint(1, 300), rng.randint(0, 50)
    held = ledger.try_reserve(generated_tokens=generated, prompt_tokens=prompt, model_calls=1)
    assert_within_limits(everyone)
    if held is None:
        return False
    await asyncio.sleep(rng.random() * 0.002)
    held.settle(used(generated=rng.randint(0, generated), prompt=prompt, calls=1))
    assert_within_limits(everyone)
    return True


async def run_branches(seed: int) -> tuple[list[Ledger], list[bool]]:
    rng = random.Random(seed)
    root = Ledger(Budget(generated_tokens=20_000, total_tokens=24_000, model_calls=150))
    children = [root.child(Budget(generated_tokens=rng.randint(2000, 9000))) for _ in range(4)]
    everyone = [root, *children]
    jobs = [branch(rng.choice(everyone), rng, everyone) for _ in range(200)]
    return everyone, await asyncio.gather(*jobs)


@pytest.mark.parametrize("seed", range(6))
async def test_concurrent_branches_never_overshoot(seed: int) -> None:
    everyone, accepted = await run_branches(seed)
    root = everyone[0]
    assert_within_limits(everyone)
    assert root.spent.model_calls == sum(accepted)
    assert any(not ok for ok in accepted)  # the budget really was the constraint
    assert root.remaining("generated_tokens") == 20_000 - root.spent.generated_tokens  # no holds
