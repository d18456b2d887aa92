"""The decision log keeps ``retention_days``, swept in batches; storage URLs never leak
their password into a log line or an error."""

from __future__ import annotations

import logging

import pytest

from modelrouter.config import BudgetLimits, BudgetsConfig
from modelrouter.errors import StorageUnavailable
from modelrouter.state.budgets import Budgets
from modelrouter.state.interfaces import DecisionRecord, FeedbackRecord
from modelrouter.state.maintenance import DAY_S, Maintenance, sweep_decisions
from modelrouter.state.redact import redact_url

from .state_fixtures import Stores

NOW = 1_760_000_000.0


def decision(i: int, age_days: float) -> DecisionRecord:
    return DecisionRecord(
        f"d{i}", "acme", NOW - age_days * DAY_S, "route", "SIMPLE", "QA", "rules", (), "tiny",
        0.0, "t",
    )  # fmt: skip


async def test_decisions_older_than_retention_are_swept_in_batches(stores: Stores):
    log = stores.decisions
    for i in range(25):
        await log.record(decision(i, age_days=31 + i))  # 25 old ones
    for i in range(25, 30):
        await log.record(decision(i, age_days=29))  # 5 recent ones
    await log.add_feedback(FeedbackRecord("d0", "acme", "u", 1.0, True, "", NOW), 32)
    await log.add_feedback(FeedbackRecord("d25", "acme", "u", 1.0, True, "", NOW), 32)
    assert await log.sweep(NOW - 30 * DAY_S, 10) == 10  # one batch at a time, oldest first
    assert await log.get("d24") is None and await log.get("d0") is not None
    assert await sweep_decisions(log, retention_days=30, batch=10, now=NOW) == 15
    assert all([await log.get(f"d{i}") is None for i in range(25)])
    assert all([await log.get(f"d{i}") is not None for i in range(25, 30)])
    assert [r.decision.decision_id async for r in log.export()] == ["d25"]  # feedback went too
    assert await sweep_decisions(log, retention_days=30, batch=10, now=NOW) == 0


async def test_zero_retention_keeps_everything(stores: Stores):
    await stores.decisions.record(decision(0, age_days=3650))
    assert await sweep_decisions(stores.decisions, retention_days=0, now=NOW) == 0
    assert await stores.decisions.get("d0") is not None


async def test_maintenance_reaps_and_sweeps_in_one_pass(stores: Stores):
    budgets = Budgets(
        BudgetsConfig(default=BudgetLimits(day_usd=1.0)),
        stores.hot,
        clock=lambda: NOW,
        request_timeout_s=60,
    )
    await budgets.reserve("acme", 0.5)
    await stores.decisions.record(decision(0, age_days=40))
    maintenance = Maintenance(budgets, stores.decisions, retention_days=30, clock=lambda: NOW)
    assert await maintenance.run_once(NOW + 3600) == (1, 1)
    [day] = await budgets.usage("acme")
    assert day.reserved_usd == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql://app:hunter2@db/x", "postgresql://app:***@db/x"),
        ("error at rediss://u:hunter2@h:1: refused", "error at rediss://u:***@h:1: refused"),
        ("host=db password=hunter2 user=app", "host=db password=*** user=app"),
        (
            "postgresql://app@db/x?password=hunter2&ssl=1",
            "postgresql://app@db/x?password=***&ssl=1",
        ),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
    ],
)
def test_redact_url_hides_passwords_only(text, expected):
    assert redact_url(text) == expected


async def test_unreachable_redis_and_postgres_never_show_the_password(caplog):
    from modelrouter.state.postgres import PostgresHotState
    from modelrouter.state.redis import RedisHotState

    caplog.set_level(logging.DEBUG)
    for store in (
        RedisHotState("redis://admin:hunter2@127.0.0.1:1/0"),
        PostgresHotState("postgresql://admin:hunter2@127.0.0.1:1/db"),
    ):
        with pytest.raises(StorageUnavailable) as raised:
            await store.open()
        assert "hunter2" not in str(raised.value) and "***" in str(raised.value)
    assert "hunter2" not in caplog.text


async def test_a_store_failing_mid_run_logs_and_raises_without_the_password(caplog):
    import redis.asyncio as aioredis

    from modelrouter.state.redis import RedisHotState

    caplog.set_level(logging.DEBUG)
    url = "redis://admin:hunter2@127.0.0.1:1/0"
    store = RedisHotState(url)
    store.retry.first_delay_s = 0.0
    # As if opened before the server went away: every call fails and is retried.
    store._client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    with pytest.raises(StorageUnavailable) as raised:
        await store.in_flight("acme")
    assert "hunter2" not in str(raised.value)
    assert "retrying" in caplog.text and "hunter2" not in caplog.text
    await store.aclose()
