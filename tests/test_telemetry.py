"""Spans and metrics of the server, read from in-memory exporters injected per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelrouter.telemetry.metrics import views
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user

SERVICE = "modelrouter.v1.ModelRouter"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Otel:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        matches = [s for s in self.finished() if s.name == name]
        assert len(matches) == 1, f"{name}: {[s.name for s in self.finished()]}"
        return matches[0]

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], views=views())
    yield Otel(spans, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
async def traced(modelrouter_server_factory, otel):
    server = await modelrouter_server_factory(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield router_pb2_grpc.ModelRouterStub(channel), channel, server


async def test_route_span_continues_callers_trace_with_rpc_attributes(traced, otel):
    stub, _, _ = traced
    await stub.Route(
        pb.RouteRequest(messages=user("What is the capital of France?")),
        metadata=(("traceparent", TRACEPARENT),),
    )
    server = otel.span(f"{SERVICE}/Route")
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert server.parent is not None and format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    assert server.parent.is_remote
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == SERVICE
    assert server.attributes["rpc.method"] == "Route"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert server.status.status_code is StatusCode.UNSET
    assert "error.type" not in server.attributes


async def test_route_has_classify_and_route_children_with_the_decision(traced, otel):
    stub, _, _ = traced
    response = await stub.Route(pb.RouteRequest(messages=user("What is the capital of France?")))
    server = otel.span(f"{SERVICE}/Route")
    route = otel.span("route")
    classify = otel.span("classify rules")
    assert route.parent.span_id == server.context.span_id
    assert classify.parent.span_id == route.context.span_id
    assert route.kind is SpanKind.INTERNAL and classify.kind is SpanKind.INTERNAL
    assert {s.context.trace_id for s in (server, route, classify)} == {server.context.trace_id}

    assert classify.attributes["modelrouter.classifier"] == "rules"
    assert classify.attributes["modelrouter.complexity"] == "simple"
    assert 0.0 <= classify.attributes["modelrouter.confidence"] <= 1.0

    for span in (route, server):
        attrs = span.attributes
        assert attrs["modelrouter.decision_id"] == response.decision_id
        assert attrs["modelrouter.selected.model"] == "tiny"
        assert attrs["modelrouter.selected.provider"] == "budget"
        assert attrs["modelrouter.candidates"] == ("tiny", "small-coder", "large")
        assert attrs["modelrouter.candidates.count"] == 3
        assert attrs["modelrouter.complexity"] == "simple"
        task_type = pb.TaskType.Name(response.classification.task_type).removeprefix("TASK_TYPE_")
        assert attrs["modelrouter.task_type"] == task_type.lower()
        assert attrs["modelrouter.score"] == pytest.approx(response.classification.score)
        assert attrs["modelrouter.estimated.cost_usd"] == pytest.approx(
            response.selected.estimated_cost_usd
        )
        assert attrs["modelrouter.estimated.latency_ms"] == 200
        assert attrs["modelrouter.reason"] == response.reason
        assert attrs["modelrouter.tenant"] == "default"


async def test_classify_call_is_traced_with_classification_only(traced, otel):
    stub, _, _ = traced
    await stub.Classify(
        pb.ClassifyRequest(messages=user("Write a Python function that reverses a linked list"))
    )
    server = otel.span(f"{SERVICE}/Classify")
    classify = otel.span("classify rules")
    assert classify.parent.span_id == server.context.span_id
    assert server.attributes["modelrouter.task_type"] == "code"
    assert "modelrouter.selected.model" not in server.attributes
    assert [s.name for s in otel.finished() if s.name == "route"] == []


async def test_client_mistake_keeps_status_unset_and_names_the_error(traced, otel):
    stub, _, _ = traced
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Route(
            pb.RouteRequest(messages=user("hello"), constraints=pb.Constraints(max_cost_usd=0.0))
        )
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    server = otel.span(f"{SERVICE}/Route")
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes["error.type"] == "FAILED_PRECONDITION"
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    route = otel.span("route")
    assert route.attributes["error.type"] == "NoEligibleModel"
    assert route.status.status_code is StatusCode.UNSET


async def test_invalid_argument_and_not_found_are_client_mistakes(traced, otel):
    stub, _, _ = traced
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Route(pb.RouteRequest())
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetModel(pb.GetModelRequest(name="nope"))
    route = otel.span(f"{SERVICE}/Route")
    get = otel.span(f"{SERVICE}/GetModel")
    assert route.attributes["error.type"] == "INVALID_ARGUMENT"
    assert get.attributes["error.type"] == "NOT_FOUND"
    assert route.status.status_code is StatusCode.UNSET
    assert get.status.status_code is StatusCode.UNSET


async def test_server_fault_sets_status_error(modelrouter_server_factory, otel):
    class Broken:
        __name__ = "broken"

        from modelrouter import hookimpl

        @hookimpl
        def register_classifiers(self, register):
            from modelrouter import Classifier

            class Exploding(Classifier):
                name = "exploding"

                async def classify(self, request):
                    raise RuntimeError("boom with secret prompt")

            register(Exploding())

    from modelrouter.config import parse_config
    from modelrouter.testing import TEST_CONFIG

    config = parse_config(
        TEST_CONFIG.replace('default_classifier = "rules"', 'default_classifier = "exploding"')
    )
    server = await modelrouter_server_factory(
        config,
        plugins=[Broken()],
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Route(pb.RouteRequest(messages=user("hello")))
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    span = otel.span(f"{SERVICE}/Route")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "INTERNAL"
    classify = otel.span("classify exploding")
    assert classify.status.status_code is StatusCode.ERROR
    assert classify.attributes["error.type"] == "RuntimeError"
    assert not classify.events  # no exception message (it may quote the prompt)


async def test_health_checks_and_reflection_are_not_traced(traced, otel):
    _, channel, _ = traced
    health = health_pb2_grpc.HealthStub(channel)
    await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert otel.finished() == []


async def test_decision_counter_and_routing_histograms(traced, otel):
    stub, _, _ = traced
    for prompt in ("hello", "hi there", "Write a Python function that reverses a linked list"):
        await stub.Route(pb.RouteRequest(messages=user(prompt)))
    decisions = {
        (p.attributes["modelrouter.selected.model"], p.attributes["modelrouter.task_type"]): p.value
        for p in otel.points("modelrouter.decisions")
    }
    assert sum(decisions.values()) == 3
    assert decisions[("small-coder", "code")] == 1
    (classifier_latency,) = otel.points("modelrouter.classifier.duration")
    assert classifier_latency.count == 3
    assert classifier_latency.attributes == {"modelrouter.classifier": "rules"}
    assert classifier_latency.explicit_bounds[0] == 0.0001
    (overhead,) = otel.points("modelrouter.routing.duration")
    assert overhead.count == 3 and overhead.sum > 0
    rpc = otel.points("rpc.server.duration")
    assert sum(p.count for p in rpc) == 3
    assert rpc[0].attributes["rpc.method"] == "Route"


async def test_callers_unsampled_trace_is_not_recorded_but_still_counted(traced, otel):
    stub, _, _ = traced
    unsampled = TRACEPARENT[:-2] + "00"
    await stub.Route(
        pb.RouteRequest(messages=user("hello")), metadata=(("traceparent", unsampled),)
    )
    assert otel.finished() == []
    assert sum(p.value for p in otel.points("modelrouter.decisions")) == 1
    stats = await stub.GetStats(pb.GetStatsRequest())
    assert stats.decisions == 1
