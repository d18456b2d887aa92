"""One pipeline: every request is classified exactly once and its decision written once.

A counting classifier plugin and a counting decision log watch a real server through
every path a request can take: Route, Execute answered, no eligible model, failover, a
budget that degrades the choice, an explicit model, a stream, a stream cut short.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

import grpc
import pytest

from modelrouter import Classification, Classifier, Complexity, RoutingRequest, TaskType, hookimpl
from modelrouter.config import parse_config
from modelrouter.errors import ProviderError
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user


class CountingClassifier(Classifier):
    """Says SIMPLE chat for everything and counts how often it was asked, per prompt."""

    name = "counting"
    calls: ClassVar[Counter[str]] = Counter()

    async def classify(self, request: RoutingRequest) -> Classification:
        self.calls[request.prompt] += 1
        return Classification(Complexity.SIMPLE, TaskType.CHAT, 0.1, 0.9, self.name)


class _Plugin:
    __name__ = "counting_classifier"

    @hookimpl
    def register_classifiers(self, register):  # type: ignore[no-untyped-def]
        register(CountingClassifier())


def _config(extra: str = "") -> object:
    text = TEST_CONFIG.replace('default_classifier = "rules"', 'default_classifier = "counting"')
    return parse_config(text + extra, source="test")


@pytest.fixture
async def watched(modelrouter_server_factory):
    """A stub on a server whose classifier and decision log count what they are asked."""
    CountingClassifier.calls = Counter()

    async def start(extra: str = ""):
        server = await modelrouter_server_factory(config=_config(extra), plugins=[_Plugin()])
        writes: Counter[str] = Counter()
        record = server.state.decisions.record

        async def counting_record(row):  # type: ignore[no-untyped-def]
            writes[row.decision_id] += 1
            await record(row)

        server.state.decisions.record = counting_record
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        return router_pb2_grpc.ModelRouterStub(channel), writes, channel, server

    channels = []

    async def factory(extra: str = ""):
        stub, writes, channel, server = await start(extra)
        channels.append(channel)
        factory.server = server
        return stub, writes

    yield factory
    for channel in channels:
        await channel.close()


async def test_route_classifies_once_and_logs_once(watched):
    stub, writes = await watched()
    routed = await stub.Route(pb.RouteRequest(messages=user("route me")))
    assert CountingClassifier.calls["route me"] == 1
    assert writes[routed.decision_id] == 1


async def test_execute_classifies_once_and_logs_once(watched):
    stub, writes = await watched()
    answered = await stub.Execute(pb.ExecuteRequest(messages=user("answer me")))
    assert CountingClassifier.calls["answer me"] == 1
    assert writes == {answered.decision_id: 1}


async def test_no_eligible_model_classifies_once(watched):
    stub, writes = await watched()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Execute(
            pb.ExecuteRequest(
                messages=user("impossible"), constraints=pb.Constraints(min_quality=0.99)
            )
        )
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert CountingClassifier.calls["impossible"] == 1
    assert not writes  # nothing was decided, so nothing is logged


async def test_failover_classifies_once_and_logs_the_final_outcome_once(watched):
    stub, writes = await watched()
    FakeProvider.enqueue("budget", ProviderError("bad_request", "no", retryable=False))
    answered = await stub.Execute(pb.ExecuteRequest(messages=user("fail over")))
    assert len(answered.attempts) == 2 and answered.attempts[0].outcome == "error"
    assert CountingClassifier.calls["fail over"] == 1
    assert writes == {answered.decision_id: 1}


async def test_explicit_model_with_no_policy_fallbacks_classifies_once(watched):
    stub, writes = await watched()
    answered = await stub.Execute(
        pb.ExecuteRequest(
            messages=user("pinned"), model="tiny", constraints=pb.Constraints(min_quality=0.99)
        )
    )
    assert answered.model == "tiny"
    assert CountingClassifier.calls["pinned"] == 1
    assert writes == {answered.decision_id: 1}


async def test_budget_degrade_classifies_once(watched):
    stub, writes = await watched(
        "\n[budgets.default]\nday_usd = 1.0\n"
        "[[budgets.degrade]]\nremaining_below = 0.5\nquality_floor = 0.0\n"
    )
    budgets = watched.server.state.budgets
    await budgets.settle(await budgets.reserve("default", 0.6), 0.6)
    answered = await stub.Execute(pb.ExecuteRequest(messages=user("degraded")))
    assert CountingClassifier.calls["degraded"] == 1
    assert writes == {answered.decision_id: 1}


async def test_stream_classifies_once_and_logs_once_before_its_summary(watched):
    stub, writes = await watched()
    messages = [m async for m in stub.ExecuteStream(pb.ExecuteRequest(messages=user("stream")))]
    summary = messages[-1].summary
    assert summary.decision_id and CountingClassifier.calls["stream"] == 1
    assert writes == {summary.decision_id: 1}


async def test_cancelled_stream_still_logs_its_decision_once(watched):
    stub, writes = await watched()
    FakeProvider.enqueue("budget", "first words of a long answer")
    call = stub.ExecuteStream(pb.ExecuteRequest(messages=user("cut short")))
    async for _ in call:
        call.cancel()
        break
    for _ in range(100):
        if writes:
            break
        await asyncio.sleep(0.01)
    assert CountingClassifier.calls["cut short"] == 1
    assert list(writes.values()) == [1]


async def test_the_judge_classifiers_spend_is_charged_to_the_tenant(modelrouter_server_factory):
    from modelrouter.testing import TEST_CONFIG as BASE

    judge = '\n[classifiers.llm-judge]\nmodel = "small-coder"\ntimeout_s = 1.0\n'
    budget = "\n[budgets.default]\nday_usd = 10.0\n"
    server = await modelrouter_server_factory(parse_config(BASE + judge + budget, source="t"))
    FakeProvider.enqueue("budget", '{"complexity": "SIMPLE", "task_type": "CHAT"}')
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        classified = await stub.Classify(
            pb.ClassifyRequest(
                messages=user("hello there"), constraints=pb.Constraints(classifier="llm-judge")
            )
        )
    cost = classified.features["judge_cost_usd"]
    assert cost > 0
    [day] = await server.state.budgets.usage("default")
    assert day.spent_usd == pytest.approx(cost) and day.reserved_usd == 0


async def test_explain_prints_a_logged_decision_with_every_candidate(
    modelrouter_server_factory, tmp_path
):
    import subprocess
    import sys

    storage = f'\n[storage]\nlog = "sqlite"\nsqlite_path = "{tmp_path / "s.db"}"\n'
    server = await modelrouter_server_factory(config=parse_config(TEST_CONFIG + storage))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        answered = await stub.Execute(
            pb.ExecuteRequest(
                messages=user("What is the capital of France?"),
                constraints=pb.Constraints(excluded_models=["small-coder"]),
            )
        )
        routed = await stub.Route(
            pb.RouteRequest(
                messages=user("What is the capital of France?"),
                constraints=pb.Constraints(excluded_models=["small-coder"]),
            )
        )
    # Route names every model a rule removed, with the rule.
    assert [(e.model, e.reason) for e in routed.excluded] == [
        ("small-coder", "constraints.excluded_models")
    ]
    config_path = tmp_path / "config.toml"
    config_path.write_text(TEST_CONFIG + storage)
    explain = [sys.executable, "-m", "modelrouter.cli", "explain", "--config", str(config_path)]
    result = subprocess.run(
        [*explain, answered.decision_id], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"decision {answered.decision_id} (execute")
    assert any(line.strip().startswith("* tiny") for line in lines)
    assert {"small-coder", "large"} <= {line.split()[0] for line in lines if line.startswith("   ")}
    assert f"outcome: ok, answered by tiny, actual ${answered.cost_usd:.6f}" in result.stdout
    # The log keeps each candidate's latency estimate and the excluded models' reasons.
    assert any(line.strip().startswith("* tiny") and " ms" in line for line in lines)
    excluded = lines.index("excluded by the routing rules:")
    assert lines[excluded + 1].split() == ["small-coder", "constraints.excluded_models"]
    missing = subprocess.run([*explain, "nope"], capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
