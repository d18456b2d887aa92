"""Budgets share usage reads per tenant (in flight, or completed within ``usage_max_age_s``),
never one that misses a write this process completed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from modelrouter.config import BudgetsConfig
from modelrouter.config.state import BudgetLimits
from modelrouter.errors import StorageUnavailable
from modelrouter.state.budgets import Budgets
from modelrouter.state.interfaces import Bucket, BucketUsage
from modelrouter.state.memory import MemoryHotState


class SlowStore(MemoryHotState):
    """A store with a round trip: every usage read waits for ``gate``; reads are counted."""

    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        self.reads += 1
        # The counters are taken when the read reaches the store, as a real backend would.
        counters = await super().usage(tenant, buckets)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return counters


def budgets(store: SlowStore, max_age_s: float = 0.0) -> Budgets:
    return Budgets(
        BudgetsConfig(default=BudgetLimits(day_usd=10.0, hour_usd=5.0)),
        store,
        usage_max_age_s=max_age_s,
    )


async def _settled(tasks: list[asyncio.Task[list]]) -> None:
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0)


async def test_concurrent_usage_reads_of_a_tenant_cost_the_store_one_read() -> None:
    store = SlowStore()
    b = budgets(store)
    callers = [asyncio.create_task(b.usage("acme")) for _ in range(20)]
    await asyncio.sleep(0.01)
    store.gate.set()
    results = await asyncio.gather(*callers)
    assert store.reads == 1
    assert all([u.window for u in r] == ["hour", "day"] for r in results)
    # Nothing in flight any more (and no max age): the next caller reads again.
    await b.usage("acme")
    assert store.reads == 2


async def test_a_recent_read_answers_until_it_is_older_than_the_max_age() -> None:
    store = SlowStore()
    store.gate.set()
    b = budgets(store, max_age_s=0.2)
    await b.usage("acme")
    await b.usage("acme")
    assert store.reads == 1
    await asyncio.sleep(0.25)
    await b.usage("acme")
    assert store.reads == 2


async def test_a_write_makes_the_next_read_fresh_whatever_the_max_age() -> None:
    store = SlowStore()
    store.gate.set()
    b = budgets(store, max_age_s=60.0)
    [_, day] = await b.usage("acme")
    assert day.reserved_usd == 0.0
    reservation = await b.reserve("acme", 2.0)
    [_, day] = await b.usage("acme")
    assert (day.reserved_usd, store.reads) == (2.0, 2)
    await b.settle(reservation, 1.5)
    [_, day] = await b.usage("acme")
    assert (day.spent_usd, day.reserved_usd, store.reads) == (1.5, 0.0, 3)


async def test_other_tenants_are_read_separately() -> None:
    store = SlowStore()
    store.gate.set()
    b = budgets(store)
    await asyncio.gather(b.usage("acme"), b.usage("globex"))
    assert store.reads == 2


async def test_a_read_started_before_a_settle_is_not_shared_after_it() -> None:
    store = SlowStore()
    b = budgets(store)
    reservation = await b.reserve("acme", 1.0)
    early = asyncio.create_task(b.usage("acme"))
    await asyncio.sleep(0.01)  # that read has taken its counters: 1.0 reserved, 0 spent
    await b.settle(reservation, 0.75)
    late = asyncio.create_task(b.usage("acme"))
    await asyncio.sleep(0.01)
    store.gate.set()
    before, after = await early, await late
    assert store.reads == 2
    assert (before[1].spent_usd, before[1].reserved_usd) == (0.0, 1.0)
    assert (after[1].spent_usd, after[1].reserved_usd) == (0.75, 0.0)


async def test_a_cancelled_caller_does_not_cancel_the_read_others_share() -> None:
    store = SlowStore()
    b = budgets(store)
    first = asyncio.create_task(b.usage("acme"))
    second = asyncio.create_task(b.usage("acme"))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0)
    store.gate.set()
    [hour, day] = await second
    assert first.cancelled()
    assert (hour.limit_usd, day.limit_usd) == (5.0, 10.0)
    assert store.reads == 1


async def test_a_failed_read_fails_every_caller_sharing_it_and_the_next_one_retries() -> None:
    store = SlowStore()
    store.fail = StorageUnavailable("store down")
    b = budgets(store, max_age_s=60.0)  # a failed read is never kept
    callers = [asyncio.create_task(b.usage("acme")) for _ in range(3)]
    await asyncio.sleep(0.01)
    store.gate.set()
    for caller in callers:
        with pytest.raises(StorageUnavailable):
            await caller
    store.fail = None
    assert len(await b.usage("acme")) == 2
    assert store.reads == 2


async def test_in_memory_usage_is_read_directly() -> None:
    store = MemoryHotState()
    b = Budgets(BudgetsConfig(default=BudgetLimits(day_usd=1.0)), store)
    reservation = await b.reserve("acme", 0.25)
    [day] = await b.usage("acme")
    assert day.reserved_usd == 0.25
    await b.settle(reservation, 0.5)
    [day] = await b.usage("acme")
    assert (day.spent_usd, day.reserved_usd) == (0.5, 0.0)
