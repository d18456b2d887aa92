"""GetStats and ``modelrouter stats``: real aggregates of what the server observed."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from modelrouter.cli import main
from modelrouter.errors import ProviderError
from modelrouter.telemetry.stats import LatencyHistogram
from modelrouter.testing import FakeProvider
from modelrouter.v1 import router_pb2 as pb

from .conftest import user


async def test_fresh_server_reports_zeros_not_invented_figures(modelrouter_stub):
    stats = await modelrouter_stub.stub.GetStats(pb.GetStatsRequest())
    assert stats.requests == 0 and stats.success_rate == 0.0
    assert stats.cost_usd == 0.0 and stats.estimated_saving_usd == 0.0
    assert [m.method for m in stats.methods] == ["Classify", "Route", "Execute", "ExecuteStream"]
    assert all(m.latency_p99_ms == 0.0 for m in stats.methods)
    assert list(stats.models) == []
    assert stats.started_at.endswith("+00:00")


async def test_stats_aggregate_calls_costs_models_and_saving(modelrouter_stub):
    stub = modelrouter_stub.stub
    routes = [
        await stub.Route(pb.RouteRequest(messages=user("What is the capital of France?"))),
        await stub.Route(
            pb.RouteRequest(messages=user("Write a Python function that sorts a list"))
        ),
    ]
    with pytest.raises(grpc.aio.AioRpcError):  # a client mistake
        await stub.Route(
            pb.RouteRequest(messages=user("hi"), constraints=pb.Constraints(max_cost_usd=0))
        )
    await stub.Classify(pb.ClassifyRequest(messages=user("hello")))
    FakeProvider.enqueue(
        "budget", ProviderError("bad_request", "no", retryable=False), "from the fallback"
    )
    executed = await stub.Execute(pb.ExecuteRequest(messages=user("What is the capital of Peru?")))
    await stub.GetStats(pb.GetStatsRequest())  # not counted

    stats = await stub.GetStats(pb.GetStatsRequest())
    by_method = {m.method: m for m in stats.methods}
    assert stats.requests == 5 and stats.succeeded == 4
    assert stats.success_rate == pytest.approx(0.8)
    route = by_method["Route"]
    assert (route.requests, route.succeeded, route.client_errors, route.server_errors) == (
        3,
        2,
        1,
        0,
    )
    assert 0 < route.latency_p50_ms <= route.latency_p90_ms <= route.latency_p99_ms
    assert by_method["Classify"].requests == 1 and by_method["Execute"].requests == 1

    assert stats.decisions == 3 and stats.executions == 1
    assert stats.cost_usd == pytest.approx(executed.cost_usd) and stats.cost_usd > 0
    assert stats.fallbacks == 1 and stats.retries == 0
    models = {m.model: m for m in stats.models}
    assert models["tiny"].selected == 2 and models["small-coder"].selected == 1
    assert models["small-coder"].answered == 1
    assert models["small-coder"].output_tokens == executed.usage.output_tokens

    # Saving: each decision against its strongest eligible candidate ("large", quality 0.9).
    selected = sum(r.selected.estimated_cost_usd for r in routes)
    strongest = sum(
        max(
            [r.selected, *r.fallbacks], key=lambda c: (c.quality, c.estimated_cost_usd)
        ).estimated_cost_usd
        for r in routes
    )
    assert stats.estimated_cost_usd > selected  # plus the Execute decision
    assert stats.strongest_estimated_cost_usd > strongest
    assert stats.estimated_saving_usd == pytest.approx(
        stats.strongest_estimated_cost_usd - stats.estimated_cost_usd
    )
    assert stats.estimated_saving_usd > 0


async def test_stats_command_prints_text_and_json(modelrouter_stub, capsys):
    await modelrouter_stub.stub.Route(pb.RouteRequest(messages=user("hello")))
    target = f"127.0.0.1:{modelrouter_stub.server.port}"
    assert await asyncio.to_thread(main, ["stats", "--target", target]) == 0
    out = capsys.readouterr().out
    assert "1 requests, 100.0% succeeded" in out
    assert "estimated saving: $" in out and "tiny" in out
    assert await asyncio.to_thread(main, ["stats", "--target", target, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decisions"] == "1"  # int64 is a string in proto JSON
    assert data["models"][0]["model"] == "tiny"


def test_latency_percentiles_are_within_two_percent():
    histogram = LatencyHistogram()
    for ms in range(1, 1001):
        histogram.add(float(ms))
    for q, exact in ((0.5, 500), (0.9, 900), (0.99, 990)):
        assert exact <= histogram.percentile(q) <= exact * 1.02
    assert histogram.total_ms / histogram.count == pytest.approx(500.5)
