"""Budgets: degrade before reject, RESOURCE_EXHAUSTED with QuotaFailure, GetUsage, no overspend."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import grpc
import pytest

from modelrouter import convert
from modelrouter.config import parse_config
from modelrouter.errors import BudgetExhausted, ProviderError
from modelrouter.pipeline import Call
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import rpc_error_details, user
from .state_fixtures import require_redis, storage_table

CODE_PROMPT = "Design a thread-safe LRU cache in Python and explain its complexity step by step"
LONG_PROMPT = "word " * 150
MAX_TOKENS = 200


def config(extra: str = ""):
    return parse_config(TEST_CONFIG + "\n" + extra, source="TEST_CONFIG+budgets")


async def _stub(server):
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return channel, router_pb2_grpc.ModelRouterStub(channel)


async def _estimate(modelrouter_server_factory, prompt: str, **constraints) -> pb.RouteResponse:
    server = await modelrouter_server_factory()
    channel, stub = await _stub(server)
    async with channel:
        return await stub.Route(
            pb.RouteRequest(messages=user(prompt), constraints=pb.Constraints(**constraints))
        )


async def test_low_budget_degrades_to_cheaper_model_and_says_so(modelrouter_server_factory):
    unconstrained = await _estimate(modelrouter_server_factory, CODE_PROMPT)
    assert unconstrained.selected.model == "large"
    limit = unconstrained.selected.estimated_cost_usd * 20
    server = await modelrouter_server_factory(
        config=config(
            f"[budgets.default]\nday_usd = {limit}\n"
            "[[budgets.degrade]]\nremaining_below = 0.5\nquality_floor = 0.6\n"
        )
    )
    spend = await server.state.budgets.reserve("default", limit * 0.6)
    await server.state.budgets.settle(spend, limit * 0.6)
    channel, stub = await _stub(server)
    async with channel:
        degraded = await stub.Route(pb.RouteRequest(messages=user(CODE_PROMPT)))
    assert degraded.selected.model == "small-coder"
    assert degraded.selected.quality >= 0.6
    assert "budget degraded: 40% of the day budget left" in degraded.reason


async def test_exhausted_budget_is_resource_exhausted_naming_window_and_reset(
    modelrouter_server_factory,
):
    server = await modelrouter_server_factory(
        config=config("[budgets.default]\nhour_usd = 0.001\n")
    )
    spend = await server.state.budgets.reserve("default", 0.001)
    await server.state.budgets.settle(spend, 0.001)
    channel, stub = await _stub(server)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Route(pb.RouteRequest(messages=user("hello")))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = rpc_error_details(raised.value)
    assert details["QuotaFailure"].violations[0].subject == "tenant:default/budget:hour"
    info = details["ErrorInfo"]
    assert info.reason == "BUDGET_EXHAUSTED" and info.metadata["window"] == "hour"
    resets_at = datetime.fromisoformat(info.metadata["resets_at"])
    assert resets_at.minute == 0 and resets_at.second == 0


async def test_request_costlier_than_what_is_left_steps_down_instead_of_failing(
    modelrouter_server_factory,
):
    prompt = "Write a Python function that reverses a linked list"
    # willingness_to_pay = 0 asks for the best model whatever it costs: "large".
    best = await _estimate(modelrouter_server_factory, prompt, willingness_to_pay=0.0)
    assert best.selected.model == "large"
    small = next(f for f in best.fallbacks if f.model == "small-coder")
    server = await modelrouter_server_factory(
        config=config(f"[budgets.default]\nday_usd = {small.estimated_cost_usd * 1.5}\n")
    )
    channel, stub = await _stub(server)
    async with channel:
        response = await stub.Route(
            pb.RouteRequest(
                messages=user(prompt), constraints=pb.Constraints(willingness_to_pay=0.0)
            )
        )
    assert response.selected.model == "small-coder"
    assert [f.model for f in response.fallbacks] == []
    assert "1 model(s) cost more than the" in response.reason


async def test_get_usage_reports_spend_after_execute(modelrouter_server_factory):
    server = await modelrouter_server_factory(
        config=config("[budgets.default]\nhour_usd = 1.0\nday_usd = 5.0\nmonth_usd = 50.0\n")
    )
    channel, stub = await _stub(server)
    async with channel:
        executed = await stub.Execute(pb.ExecuteRequest(messages=user("hello there")))
        usage = await stub.GetUsage(pb.GetUsageRequest())
    assert usage.tenant == "default"
    assert [w.window for w in usage.windows] == ["hour", "day", "month"]
    hour = usage.windows[0]
    assert hour.spent_usd == pytest.approx(executed.cost_usd) and hour.spent_usd > 0
    assert hour.reserved_usd == 0
    assert hour.remaining_usd == pytest.approx(1.0 - executed.cost_usd)
    record = await server.state.decisions.get(executed.decision_id)
    assert record.kind == "execute" and record.outcome == "ok"
    assert record.actual_cost_usd == pytest.approx(executed.cost_usd)


async def _hammer(ports: list[int], n: int) -> tuple[int, int]:
    # Four connections per server: one connection may open only
    # [server] max_concurrent_streams_per_connection (100) calls at once.
    separate = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{p}", options=separate)
        for p in ports
        for _ in range(4)
    ]
    stubs = [router_pb2_grpc.ModelRouterStub(c) for c in channels]
    request = pb.ExecuteRequest(
        messages=user(LONG_PROMPT), constraints=pb.Constraints(max_output_tokens=MAX_TOKENS)
    )

    async def one(i: int) -> bool:
        try:
            await stubs[i % len(stubs)].Execute(request, timeout=60)
            return True
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            return False

    try:
        results = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for c in channels:
            await c.close()
    return sum(results), n - sum(results)


async def test_200_concurrent_executes_overspend_by_at_most_one_request(
    backend_config, modelrouter_server_factory
):
    max_cost = (
        await _estimate(modelrouter_server_factory, LONG_PROMPT, max_output_tokens=MAX_TOKENS)
    ).selected.estimated_cost_usd
    limit = 10 * max_cost
    server = await modelrouter_server_factory(
        config=backend_config(f"[budgets.default]\nday_usd = {limit}\n")
    )
    ok, rejected = await _hammer([server.port], 200)
    usage = {u.window: u for u in await server.state.budgets.usage("default")}["day"]
    print(
        f"{backend_config.backend}: {ok} ok, {rejected} rejected, spent ${usage.spent_usd:.6f} "
        f"of ${limit:.6f} (max cost ${max_cost:.6f})"
    )
    assert ok >= 10 and rejected > 0
    assert usage.reserved_usd == 0
    assert usage.spent_usd <= limit + max_cost


async def test_two_server_processes_sharing_redis_overspend_by_at_most_one_request(
    tmp_path: Path, modelrouter_server_factory
):
    await require_redis()
    from .state_fixtures import drop_redis_prefix

    max_cost = (
        await _estimate(modelrouter_server_factory, LONG_PROMPT, max_output_tokens=MAX_TOKENS)
    ).selected.estimated_cost_usd
    limit = 10 * max_cost
    prefix = f"mrtest_{os.getpid()}_{id(tmp_path)}"
    text = (
        TEST_CONFIG
        + "\n"
        + storage_table("redis", tmp_path, prefix)
        + f"\n[budgets.default]\nday_usd = {limit}\n"
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    processes = [_start_process(path) for _ in range(2)]
    try:
        ports = [_read_port(p) for p in processes]
        ok, rejected = await _hammer(ports, 200)
        state_config = parse_config(text)
        from modelrouter.state import open_state

        state = await open_state(state_config)
        try:
            [day] = await state.budgets.usage("default")
        finally:
            await state.aclose()
        print(
            f"2 processes + redis: {ok} ok, {rejected} rejected, "
            f"spent ${day.spent_usd:.6f} of ${limit:.6f}"
        )
        assert ok >= 10 and rejected > 0
        assert day.reserved_usd == 0
        assert day.spent_usd <= limit + max_cost
    finally:
        for p in processes:
            p.kill()
            p.wait()
        await drop_redis_prefix(prefix)


def _start_process(config_path: Path) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, "-m", "tests.state_server_process", str(config_path)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )


def _read_port(process: subprocess.Popen[str]) -> int:
    line = process.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith("PORT "), f"server process did not start: {line!r}"
    return int(line.split()[1])


def _refused(call) -> str:
    raise ProviderError("provider_error", "tiny cannot answer this", retryable=False)


async def test_failover_to_pricier_fallbacks_never_spends_past_one_request(
    backend_config, modelrouter_server_factory
):
    # "tiny" fails every call, so each request fails over to "large", which costs ~30x
    # more. When only the selected model was reserved, every concurrent request passed
    # the check and then spent a "large" call nobody had reserved.
    constraints = pb.Constraints(excluded_models=["small-coder"], max_output_tokens=50)
    route = await _estimate(
        modelrouter_server_factory, "hello", excluded_models=["small-coder"], max_output_tokens=50
    )
    assert route.selected.model == "tiny" and [f.model for f in route.fallbacks] == ["large"]
    large_max = route.fallbacks[0].estimated_cost_usd
    limit = 5 * large_max
    server = await modelrouter_server_factory(
        config=backend_config(f"[budgets.default]\nday_usd = {limit}\n")
    )

    async def slow_answer(call) -> str:
        await asyncio.sleep(0.05)
        return "word " * 49 + "end"  # 50 output tokens: the whole max

    n = 30
    FakeProvider.enqueue("budget", *[_refused] * n)
    FakeProvider.enqueue("premium", *[slow_answer] * n)
    channel, stub = await _stub(server)
    async with channel:
        results = await asyncio.gather(
            *(
                stub.Execute(pb.ExecuteRequest(messages=user("hello"), constraints=constraints))
                for _ in range(n)
            ),
            return_exceptions=True,
        )
    answered = [r for r in results if isinstance(r, pb.ExecuteResponse)]
    failed = [r for r in results if not isinstance(r, pb.ExecuteResponse)]
    assert all(r.model == "large" for r in answered)
    assert len(answered) >= 4 and failed
    for error in failed:
        assert isinstance(error, grpc.aio.AioRpcError), error
        assert error.code() in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.UNAVAILABLE,
        ), error
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            # "large" was left out at Route, or passed over at its reservation.
            assert "tiny: provider_error" in error.details()
    [day] = await server.state.budgets.usage("default")
    assert day.reserved_usd == 0
    assert day.spent_usd <= limit + large_max
    assert day.spent_usd == pytest.approx(sum(r.cost_usd for r in answered))


async def test_execute_steps_down_to_a_fallback_that_fits_instead_of_refusing(
    modelrouter_server_factory,
):
    route = await _estimate(modelrouter_server_factory, "hello")
    costs = {c.model: c.estimated_cost_usd for c in [route.selected, *route.fallbacks]}
    assert costs["tiny"] < costs["small-coder"] < costs["large"]
    # Enough for "small-coder" but not for the explicitly requested "large".
    limit = (costs["small-coder"] + costs["large"]) / 2
    server = await modelrouter_server_factory(
        config=config(f"[budgets.default]\nday_usd = {limit}\n")
    )
    channel, stub = await _stub(server)
    async with channel:
        response = await stub.Execute(pb.ExecuteRequest(messages=user("hello"), model="large"))
    assert response.model == "tiny"
    assert [call.model for _, call in FakeProvider.history] == ["tiny"]
    [day] = await server.state.budgets.usage("default")
    assert day.spent_usd == pytest.approx(response.cost_usd) and day.reserved_usd == 0
    record = await server.state.decisions.get(response.decision_id)
    assert record.outcome == "ok" and record.chosen_model == "tiny"


async def test_budget_spent_after_routing_steps_down_at_reservation_time(
    modelrouter_server_factory,
):
    request = convert.routing_request(
        user("Write a Python function that reverses a linked list"),
        pb.Constraints(willingness_to_pay=0.0),
    )
    server = await modelrouter_server_factory(config=config("[budgets.default]\nday_usd = 1.0\n"))
    decision = await server.pipeline.route(Call("Route"), request)
    costs = {c.model.name: c.estimated_cost_usd for c in decision.selection.candidates}
    assert decision.selection.selected.model.name == "large" and "small-coder" in costs
    # Concurrent requests take the money between Route and the first call: what is left
    # covers "small-coder" but no longer "large".
    held = await server.state.budgets.reserve(
        "default", 1.0 - (costs["small-coder"] + costs["large"]) / 2
    )
    summary = await server.pipeline.execute_decision(Call("Execute"), request, decision)
    assert summary.model == "small-coder"
    assert [call.model for _, call in FakeProvider.history] == ["small-coder"]
    assert summary.skipped[0][0] == "large" and "budget" in summary.skipped[0][1]
    await server.state.budgets.release(held)
    [day] = await server.state.budgets.usage("default")
    assert day.spent_usd == pytest.approx(summary.cost_usd) and day.reserved_usd == 0


async def test_execute_is_refused_before_any_call_when_no_model_fits_any_more(
    modelrouter_server_factory,
):
    request = convert.routing_request(user("hello"), pb.Constraints())
    server = await modelrouter_server_factory(config=config("[budgets.default]\nhour_usd = 1.0\n"))
    decision = await server.pipeline.route(Call("Route"), request)
    cheapest = min(c.estimated_cost_usd for c in decision.selection.candidates)
    held = await server.state.budgets.reserve("default", 1.0 - cheapest / 2)
    with pytest.raises(BudgetExhausted) as raised:
        await server.pipeline.execute_decision(Call("Execute"), request, decision)
    assert raised.value.window == "hour"
    assert FakeProvider.history == []
    record = await server.state.decisions.get(decision.decision_id)
    assert record.outcome == "rejected"
    await server.state.budgets.release(held)
    [hour] = await server.state.budgets.usage("default")
    assert hour.spent_usd == 0 and hour.reserved_usd == 0
