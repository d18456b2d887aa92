"""Every storage backend behaves the same, against the real server and directly."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from modelrouter.errors import BudgetExhausted, ConfigError
from modelrouter.state import open_state
from modelrouter.state.interfaces import Bucket
from modelrouter.v1 import router_pb2 as pb

from .conftest import user

BUDGET = """
[budgets.default]
day_usd = 1.0
"""


async def test_route_logs_decision_and_feedback_round_trips(
    backend_config, modelrouter_server_factory
):
    server = await modelrouter_server_factory(config=backend_config(BUDGET))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_stub(channel)
        routed = await stub.Route(pb.RouteRequest(messages=user("What is the capital of France?")))
        ack = await stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(
                decision_id=routed.decision_id, score=0.8, success=True, source="u1"
            )
        )
        assert ack.duplicate is False
        again = await stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(
                decision_id=routed.decision_id, score=0.8, success=True, source="u1"
            )
        )
        assert again.duplicate is True  # the same feedback again changes nothing
    record = await server.state.decisions.get(routed.decision_id)
    assert record.chosen_model == routed.selected.model == "tiny"
    assert record.tenant == "default" and record.complexity == "SIMPLE"
    assert [c.model for c in record.candidates] == ["tiny", "small-coder", "large"]
    assert record.prompt is None  # prompts are logged only when the operator opts in
    rows = [row async for row in server.state.decisions.export()]
    assert [(f.source, f.score) for f in rows[0].feedback] == [("u1", 0.8)]


async def test_concurrent_reservations_never_exceed_the_limit(backend_config):
    state = await open_state(backend_config())
    try:
        bucket = Bucket("day", "2024-05-01", limit=10_000, ttl_s=3600)
        results = await asyncio.gather(
            *(
                state.hot.reserve("t1", f"a{i}", 1_000, [bucket], now=0.0, max_in_flight=0)
                for i in range(50)
            )
        )
        assert sum(r is None for r in results) == 10
        usage = await state.hot.usage("t1", [bucket])
        assert usage[0].reserved == 10_000 and usage[0].spent == 0
        first = next(i for i, r in enumerate(results) if r is None)
        await state.hot.settle("t1", f"a{first}", [bucket], 600, estimated=False, now=0.0)
        usage = await state.hot.usage("t1", [bucket])
        assert (usage[0].spent, usage[0].reserved) == (600, 9_000)
    finally:
        await state.aclose()


async def test_reserve_is_all_or_nothing_across_windows(backend_config):
    state = await open_state(backend_config())
    try:
        day = Bucket("day", "2024-05-01", limit=5_000, ttl_s=3600)
        hour = Bucket("hour", "2024-05-01T10", limit=1_000, ttl_s=3600)
        refused = await state.hot.reserve("t2", "a", 2_000, [day, hour], now=0.0, max_in_flight=0)
        assert refused == hour
        usage = await state.hot.usage("t2", [day, hour])
        assert usage[0].reserved == 0 and usage[1].reserved == 0
    finally:
        await state.aclose()


async def test_budget_exhaustion_names_window_and_reset(backend_config):
    state = await open_state(backend_config("[budgets.default]\nhour_usd = 0.01\n"))
    try:
        first = await state.budgets.reserve("acme", 0.008)
        with pytest.raises(BudgetExhausted) as raised:
            await state.budgets.reserve("acme", 0.008)
        assert raised.value.window == "hour"
        assert raised.value.resets_at.minute == 0
        await state.budgets.release(first)
        second = await state.budgets.reserve("acme", 0.008)
        await state.budgets.settle(second, 0.005)
        [hour] = await state.budgets.usage("acme")
        assert hour.spent_usd == pytest.approx(0.005) and hour.reserved_usd == 0
        assert hour.remaining_usd == pytest.approx(0.005)
    finally:
        await state.aclose()


async def test_adaptive_statistics_accumulate(backend_config):
    state = await open_state(backend_config())
    try:
        await asyncio.gather(
            *(state.hot.record_reward("simple:qa", "tiny", 0.5) for _ in range(20))
        )
        await state.hot.record_reward("simple:qa", "large", 1.0)
        stats = await state.hot.arm_stats("simple:qa")
        assert stats["tiny"].count == 20 and stats["tiny"].reward_sum == pytest.approx(10.0)
        assert stats["large"].count == 1
    finally:
        await state.aclose()


async def test_unreachable_backend_is_a_clear_startup_error(modelrouter_config):
    from modelrouter.config import parse_config
    from modelrouter.testing import TEST_CONFIG

    config = parse_config(
        TEST_CONFIG + '\n[storage]\nhot = "redis"\nredis_url = "redis://127.0.0.1:1/0"\n',
        source="bad.toml",
    )
    with pytest.raises(ConfigError, match=r"bad.toml: storage.hot = 'redis': cannot reach Redis"):
        await open_state(config)


def pb_stub(channel):
    from modelrouter.v1 import router_pb2_grpc

    return router_pb2_grpc.ModelRouterStub(channel)


async def test_in_memory_decision_log_forgets_the_oldest_beyond_its_bound():
    from modelrouter.state.interfaces import DecisionRecord, FeedbackRecord
    from modelrouter.state.memory import MemoryDecisionLog

    log = MemoryDecisionLog(max_decisions=3)

    def decision(i: int) -> DecisionRecord:
        return DecisionRecord(
            f"d{i}",
            "default",
            float(i),
            "route",
            "simple",
            "chat",
            "rules",
            (),
            "tiny",
            0.0,
            "test",
        )

    await log.record(decision(0))
    written = await log.add_feedback(FeedbackRecord("d0", "default", "", 1.0, True), 32)
    assert written.status == "created"
    for i in range(1, 5):
        await log.record(decision(i))
    assert await log.get("d0") is None and await log.get("d1") is None
    assert [(await log.get(f"d{i}")).decision_id for i in (2, 3, 4)] == ["d2", "d3", "d4"]
    assert [row async for row in log.export()] == []  # d0's feedback went with it
