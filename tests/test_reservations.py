"""Reservations cannot leak or multiply: idempotent per attempt, capped per tenant, reaped
when abandoned, on every backend (memory, SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from modelrouter.config import BudgetLimits, BudgetsConfig
from modelrouter.errors import BudgetExhausted, InFlightLimitExceeded
from modelrouter.state.budgets import Budgets
from modelrouter.state.interfaces import IN_FLIGHT, Bucket, to_nano

from .state_fixtures import REDIS_URL, Stores, drop_redis_prefix, require_redis

NOW = 1_760_000_000.0  # 2025-10-09T08:53:20Z
DAY = Bucket("day", "2025-10-09", limit=10_000, ttl_s=3600)


def budgets(stores: Stores, day_usd: float, **kwargs: object) -> Budgets:
    clock = kwargs.pop("clock", lambda: NOW)
    return Budgets(
        BudgetsConfig(default=BudgetLimits(day_usd=day_usd)),
        stores.hot,
        clock=clock,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


async def test_retried_reserve_and_settle_are_applied_once(stores: Stores):
    hot = stores.hot
    for _ in range(3):  # a client retrying after lost replies
        assert await hot.reserve("t", "a1", 1_000, [DAY], now=NOW, max_in_flight=0) is None
    [usage] = await hot.usage("t", [DAY])
    assert (usage.spent, usage.reserved) == (0, 1_000)
    assert await hot.in_flight("t") == 1
    assert await hot.settle("t", "a1", [DAY], 700, estimated=False, now=NOW) is True
    for _ in range(3):
        assert await hot.settle("t", "a1", [DAY], 700, estimated=False, now=NOW) is False
    # A reserve retried after the settle holds nothing either.
    assert await hot.reserve("t", "a1", 1_000, [DAY], now=NOW, max_in_flight=0) is None
    [usage] = await hot.usage("t", [DAY])
    assert (usage.spent, usage.reserved) == (700, 0)
    assert await hot.in_flight("t") == 0


async def test_concurrent_retries_of_one_attempt_reserve_once(stores: Stores):
    results = await asyncio.gather(
        *(
            stores.hot.reserve("t", "same", 1_000, [DAY], now=NOW, max_in_flight=0)
            for _ in range(20)
        )
    )
    assert results == [None] * 20
    [usage] = await stores.hot.usage("t", [DAY])
    assert usage.reserved == 1_000
    settled = await asyncio.gather(
        *(stores.hot.settle("t", "same", [DAY], 900, estimated=True, now=NOW) for _ in range(20))
    )
    assert sorted(settled) == [False] * 19 + [True]
    [usage] = await stores.hot.usage("t", [DAY])
    assert (usage.spent, usage.reserved) == (900, 0)


async def test_settle_records_the_whole_actual_cost_even_past_the_reservation(stores: Stores):
    b = budgets(stores, day_usd=1.0)
    held = await b.reserve("acme", 0.01, attempt_id="x")
    await b.settle(held, 0.05, estimated=True)  # the call cost 5x what was reserved
    [day] = await b.usage("acme")
    assert day.spent_usd == pytest.approx(0.05) and day.reserved_usd == 0


async def test_many_tasks_against_a_small_budget_never_commit_past_it(stores: Stores):
    b = budgets(stores, day_usd=0.010, max_in_flight_per_tenant=0)
    spent_calls = 0

    async def client(i: int) -> None:
        nonlocal spent_calls
        for j in range(3):
            try:
                held = await b.reserve("acme", 0.001, attempt_id=f"{i}-{j}")
            except BudgetExhausted:
                return
            await asyncio.sleep(random.random() / 100)
            spent_calls += 1
            await b.settle(held, 0.001)

    await asyncio.gather(*(client(i) for i in range(60)))
    [day] = await b.usage("acme")
    assert spent_calls == 10
    assert day.spent_usd == pytest.approx(0.010) and day.reserved_usd == 0


async def test_in_flight_cap_bounds_overspend_by_calls_that_cost_more_than_reserved(
    stores: Stores,
):
    # Each call costs twice its reservation (an estimate far under the truth). With one
    # call in flight at a time the budget is overrun by at most one call's excess.
    b = budgets(stores, day_usd=0.010, max_in_flight_per_tenant=1)
    refused_in_flight = 0

    async def client(i: int) -> None:
        nonlocal refused_in_flight
        for j in range(20):
            try:
                held = await b.reserve("acme", 0.001, attempt_id=f"{i}-{j}")
            except InFlightLimitExceeded:
                refused_in_flight += 1
                await asyncio.sleep(0.001)
                continue
            except BudgetExhausted:
                return
            await asyncio.sleep(0.001)
            await b.settle(held, 0.002)

    await asyncio.gather(*(client(i) for i in range(30)))
    [day] = await b.usage("acme")
    assert refused_in_flight > 0
    assert 0.010 <= day.spent_usd <= 0.010 + 0.001 + 1e-9
    assert day.reserved_usd == 0


async def test_in_flight_cap_refuses_past_the_limit_and_frees_on_settle(stores: Stores):
    b = budgets(stores, day_usd=1.0, max_in_flight_per_tenant=3)
    held = [await b.reserve("acme", 0.001) for _ in range(3)]
    with pytest.raises(InFlightLimitExceeded) as raised:
        await b.reserve("acme", 0.001)
    assert isinstance(raised.value, BudgetExhausted)  # RESOURCE_EXHAUSTED at the edge
    assert raised.value.window == "in_flight" and raised.value.limit == 3
    assert await b.in_flight("acme") == 3
    await b.reserve("other-tenant", 0.001)  # the cap is per tenant
    await b.settle(held[0], 0.001)
    await b.reserve("acme", 0.001)
    assert await b.in_flight("acme") == 3


async def test_abandoned_reservations_are_reaped_after_timeout_plus_grace(stores: Stores):
    now = [NOW]
    b = budgets(
        stores,
        day_usd=1.0,
        clock=lambda: now[0],
        request_timeout_s=10.0,
        reap_grace_s=5.0,
        reap_batch=4,
        max_in_flight_per_tenant=0,
    )
    stale = [await b.reserve(f"tenant{i % 3}", 0.01) for i in range(10)]
    now[0] += 10.0
    fresh = await b.reserve("tenant0", 0.01)
    assert await b.reap() == 0  # 10 s old: within timeout + grace
    now[0] += 6.0
    assert await b.reap() == 10  # three batches of at most 4
    usage = {t: (await b.usage(t))[0] for t in ("tenant0", "tenant1", "tenant2")}
    assert usage["tenant0"].reserved_usd == pytest.approx(0.01)  # only the fresh one
    assert usage["tenant1"].reserved_usd == 0 and usage["tenant2"].reserved_usd == 0
    assert await b.in_flight("tenant0") == 1
    # The holder of a reaped reservation settles late: the spend still counts, once.
    await b.settle(stale[0], 0.004)
    await b.settle(stale[0], 0.004)
    [day] = await b.usage(stale[0].tenant)
    assert day.spent_usd == pytest.approx(0.004)
    assert day.reserved_usd == pytest.approx(0.01)  # the fresh one, untouched
    await b.settle(fresh, 0.0)
    assert await b.reap(now[0] + 3600) == 0


async def test_reaped_reservation_reserved_again_is_not_held_twice(stores: Stores):
    hot = stores.hot
    assert await hot.reserve("t", "r1", 500, [DAY], now=NOW, max_in_flight=0) is None
    assert await hot.reap(NOW + 1, 100, NOW + 1) == 1
    assert await hot.reserve("t", "r1", 500, [DAY], now=NOW + 2, max_in_flight=0) is None
    [usage] = await hot.usage("t", [DAY])
    assert usage.reserved == 0


async def test_settle_of_an_unknown_attempt_records_the_spend_once(stores: Stores):
    hot = stores.hot
    assert await hot.settle("t", "never-reserved", [DAY], 300, estimated=True, now=NOW)
    assert not await hot.settle("t", "never-reserved", [DAY], 300, estimated=True, now=NOW)
    [usage] = await hot.usage("t", [DAY])
    assert (usage.spent, usage.reserved) == (300, 0)


async def test_refused_reserve_leaves_nothing_behind(stores: Stores):
    hot = stores.hot
    hour = Bucket("hour", "2025-10-09T08", limit=1_000, ttl_s=3600)
    assert await hot.reserve("t", "big", 2_000, [DAY, hour], now=NOW, max_in_flight=0) == hour
    assert await hot.in_flight("t") == 0
    # The refused attempt id is not remembered: once money frees up it may reserve.
    assert await hot.reserve("t", "big", 500, [DAY, hour], now=NOW, max_in_flight=0) is None
    assert await hot.reserve("t", "x", 1, [DAY], now=NOW, max_in_flight=1) == IN_FLIGHT


async def test_budgets_reserve_is_idempotent_per_attempt_id(stores: Stores):
    b = budgets(stores, day_usd=0.002)
    first = await b.reserve("acme", 0.002, attempt_id="decision-1/0")
    again = await b.reserve("acme", 0.002, attempt_id="decision-1/0")  # a retry
    assert again.attempt_id == first.attempt_id
    [day] = await b.usage("acme")
    assert day.reserved_usd == pytest.approx(0.002)
    await b.settle(first, 0.001)
    await b.settle(again, 0.001)  # another object, same attempt: already settled
    [day] = await b.usage("acme")
    assert (day.spent_usd, day.reserved_usd) == (pytest.approx(0.001), 0)
    assert to_nano(day.spent_usd) == 1_000_000


async def test_two_redis_replicas_share_the_in_flight_cap_and_the_reaper(tmp_path):
    from modelrouter.state.redis import RedisHotState

    await require_redis()
    prefix = f"mrtest_{uuid.uuid4().hex[:12]}"
    one, two = RedisHotState(REDIS_URL, prefix), RedisHotState(REDIS_URL, prefix)
    await one.open()
    await two.open()
    try:
        config = BudgetsConfig(default=BudgetLimits(day_usd=1.0))
        a = Budgets(config, one, clock=lambda: NOW, max_in_flight_per_tenant=4)
        b = Budgets(config, two, clock=lambda: NOW, max_in_flight_per_tenant=4)
        held = await asyncio.gather(*(replica.reserve("acme", 0.01) for replica in (a, b, a, b)))
        for replica in (a, b):
            with pytest.raises(InFlightLimitExceeded):
                await replica.reserve("acme", 0.01)
        assert await a.in_flight("acme") == await b.in_flight("acme") == 4
        await b.settle(held[0], 0.01)  # replica two settles what replica one reserved
        await a.reserve("acme", 0.01)
        # Replica one dies holding its reservations; replica two's reaper frees them.
        assert await b.reap(NOW + 3600) == 4
        [day] = await a.usage("acme")
        assert (day.spent_usd, day.reserved_usd) == (pytest.approx(0.01), 0)
    finally:
        await one.aclose()
        await two.aclose()
        await drop_redis_prefix(prefix)


async def test_settled_attempts_are_forgotten_after_the_idempotency_window(stores: Stores):
    from modelrouter.state.interfaces import TOMBSTONE_TTL_S

    if stores.backend == "redis":
        pytest.skip("Redis expires tombstones on its own clock (EXPIRE), not the test's")
    hot = stores.hot
    for i in range(50):
        await hot.reserve("t", f"a{i}", 10, [DAY], now=NOW, max_in_flight=0)
        await hot.settle("t", f"a{i}", [DAY], 10, estimated=False, now=NOW)
    later = NOW + TOMBSTONE_TTL_S + 1
    assert await hot.reap(later, 1000, later) == 0  # nothing held: only tombstones go
    # Past the window a replay is a new attempt: the store no longer remembers a0.
    assert await hot.settle("t", "a0", [DAY], 10, estimated=False, now=later)
    [usage] = await hot.usage("t", [DAY])
    assert usage.spent == 510


async def test_more_concurrent_calls_than_pooled_connections_wait_instead_of_failing(
    stores: Stores,
):
    # redis-py's default pool refuses the 101st concurrent call ("Too many connections").
    b = budgets(stores, day_usd=100.0, max_in_flight_per_tenant=0)

    async def call(i: int) -> None:
        held = await b.reserve(f"tenant{i % 7}", 0.01, attempt_id=f"p{i}")
        await b.settle(held, 0.01)

    await asyncio.gather(*(call(i) for i in range(300)))
    spent = sum([(await b.usage(f"tenant{t}"))[0].spent_usd for t in range(7)])
    assert spent == pytest.approx(3.0)
