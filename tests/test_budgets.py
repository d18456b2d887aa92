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

from modelrouter.config import parse_config
from modelrouter.testing import TEST_CONFIG
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
    spend = await server.router.state.budgets.reserve("default", limit * 0.6)
    await server.router.state.budgets.settle(spend, limit * 0.6)
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
    spend = await server.router.state.budgets.reserve("default", 0.001)
    await server.router.state.budgets.settle(spend, 0.001)
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
    record = await server.router.state.decisions.get(executed.decision_id)
    assert record.kind == "execute" and record.outcome == "ok"
    assert record.actual_cost_usd == pytest.approx(executed.cost_usd)


async def _hammer(ports: list[int], n: int) -> tuple[int, int]:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in ports]
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
    usage = {u.window: u for u in await server.router.state.budgets.usage("default")}["day"]
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
            f"2 processes + redis: {ok} ok, {rejected} rejected, spent ${day.spent_usd:.6f} of ${limit:.6f}"
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
