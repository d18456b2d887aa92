"""Feedback counts once per decision, is bounded per tenant and per decision, and one
tenant's feedback never steers another's routing; on every backend."""

from __future__ import annotations

import asyncio

import pytest

from modelrouter.config import AdaptiveConfig
from modelrouter.errors import InvalidRequest, NotFound, QuotaExceeded
from modelrouter.state.adaptive import AdaptivePolicy, arm_key
from modelrouter.state.feedback import FeedbackService
from modelrouter.state.interfaces import DecisionRecord

from .state_fixtures import Stores

NOW = 1_760_000_080.0  # 40 s into a minute


def decision(decision_id: str, tenant: str = "acme", created_at: float = NOW) -> DecisionRecord:
    return DecisionRecord(
        decision_id, tenant, created_at, "route", "SIMPLE", "QA", "rules", (), "tiny", 0.0, "t"
    )


def service(stores: Stores, clock=lambda: NOW, pool: bool = False, **limits) -> FeedbackService:
    adaptive = AdaptivePolicy(AdaptiveConfig(enabled=True), stores.hot, pool_tenants=pool)
    return FeedbackService(stores.decisions, adaptive, clock=clock, **limits)


async def stats(stores: Stores, tenant: str = "acme"):
    return (await stores.hot.arm_stats(arm_key("simple", "qa", tenant))).get("tiny")


async def test_a_decision_counts_its_latest_feedback_only(stores: Stores):
    feedback = service(stores)
    await stores.decisions.record(decision("d1"))
    assert await feedback.submit("acme", "d1", 0.9, True, source="user")
    assert not await feedback.submit("acme", "d1", 0.9, True, source="user")  # a retry
    assert await feedback.submit("acme", "d1", 0.2, True, source="judge")
    assert await feedback.submit("acme", "d1", 0.7, False, source="user")  # failed: reward 0
    arm = await stats(stores)
    assert arm.count == 1 and arm.reward_sum == pytest.approx(0.0)
    [row] = [r async for r in stores.decisions.export("acme")]
    assert [(f.source, f.score, f.success) for f in row.feedback] == [("user", 0.7, False)]


async def test_concurrent_feedback_on_one_decision_leaves_log_and_statistics_agreeing(
    stores: Stores,
):
    feedback = service(stores)
    await stores.decisions.record(decision("d1"))
    scores = [i / 20 for i in range(20)]
    await asyncio.gather(
        *(feedback.submit("acme", "d1", s, True, source=f"s{i % 5}") for i, s in enumerate(scores))
    )
    [row] = [r async for r in stores.decisions.export("acme")]
    [last] = row.feedback
    arm = await stats(stores)
    assert arm.count == 1 and arm.reward_sum == pytest.approx(last.score)


async def test_distinct_sources_per_decision_are_bounded(stores: Stores):
    feedback = service(stores, max_sources=3)
    await stores.decisions.record(decision("d1"))
    for i in range(3):
        await feedback.submit("acme", "d1", 0.5 + i / 10, True, source=f"s{i}")
    with pytest.raises(QuotaExceeded) as raised:
        await feedback.submit("acme", "d1", 1.0, True, source="s3")
    assert raised.value.window == "feedback_sources" and raised.value.retry_after_s is None
    assert await feedback.submit("acme", "d1", 0.1, True, source="s0")  # a known source may
    arm = await stats(stores)
    assert arm.count == 1 and arm.reward_sum == pytest.approx(0.1)


async def test_feedback_rate_is_limited_per_tenant_per_minute(stores: Stores):
    now = [NOW]
    feedback = service(stores, clock=lambda: now[0], per_minute=5)
    for i in range(7):
        await stores.decisions.record(decision(f"a{i}"))
        await stores.decisions.record(decision(f"b{i}", tenant="other"))
    for i in range(5):
        await feedback.submit("acme", f"a{i}", 1.0, True)
    with pytest.raises(QuotaExceeded) as raised:
        await feedback.submit("acme", "a5", 1.0, True)
    assert raised.value.window == "feedback_per_minute"
    assert raised.value.retry_after_s == pytest.approx(20.0)
    await feedback.submit("other", "b0", 1.0, True)  # another tenant has its own minute
    now[0] += 20.0  # the next minute
    await feedback.submit("acme", "a5", 1.0, True)
    assert (await stats(stores)).count == 6


async def test_over_long_fields_are_refused_before_anything_is_stored(stores: Stores):
    feedback = service(stores, max_source_chars=8, max_comment_chars=16)
    await stores.decisions.record(decision("d1"))
    with pytest.raises(InvalidRequest) as raised:
        await feedback.submit("acme", "d1", 0.5, True, comment="c" * 17, source="s" * 9)
    assert [v.field for v in raised.value.violations] == ["source", "comment"]
    assert await stats(stores) is None
    assert [r async for r in stores.decisions.export()] == []


async def test_one_tenants_feedback_never_steers_another_tenants_statistics(stores: Stores):
    feedback = service(stores)
    await stores.decisions.record(decision("a1", tenant="a"))
    await stores.decisions.record(decision("b1", tenant="b"))
    await feedback.submit("a", "a1", 0.0, False)
    with pytest.raises(NotFound):  # b's decision does not exist for a
        await feedback.submit("a", "b1", 0.0, False)
    assert (await stats(stores, "a")).count == 1
    assert await stats(stores, "b") is None


async def test_pooled_statistics_are_shared_when_the_operator_asks(stores: Stores):
    feedback = service(stores, pool=True)
    await stores.decisions.record(decision("a1", tenant="a"))
    await stores.decisions.record(decision("b1", tenant="b"))
    await feedback.submit("a", "a1", 1.0, True)
    await feedback.submit("b", "b1", 0.5, True)
    pooled = (await stores.hot.arm_stats(arm_key("simple", "qa")))["tiny"]
    assert pooled.count == 2 and pooled.reward_sum == pytest.approx(1.5)


def test_tenant_names_cannot_forge_another_tenants_statistics_key():
    assert arm_key("simple", "qa", "a:simple") != arm_key("simple", "qa", "a")
    assert arm_key("x", "y", "t") != arm_key("x", "y")
    keys = {arm_key("simple", "qa", t) for t in ("a", "a:", "a:simple:qa", "*", "")}
    assert len(keys) == 5
