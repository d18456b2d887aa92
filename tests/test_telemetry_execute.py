"""CLIENT spans per provider attempt and GenAI metrics, for Execute and ExecuteStream."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from modelrouter.config import parse_config
from modelrouter.errors import ProviderError
from modelrouter.telemetry import attributes as a
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user
from .test_telemetry import SERVICE, otel  # noqa: F401  (fixture)

#: No backoff sleeps, and a circuit that opens after two consecutive failures.
CONFIG = (
    TEST_CONFIG
    + """
[execution]
backoff_base_s = 0.0
backoff_max_s = 0.0
circuit_failure_threshold = 2
"""
)


@pytest.fixture
async def stub(modelrouter_server_factory, otel):  # noqa: F811
    server = await modelrouter_server_factory(
        parse_config(CONFIG, source="CONFIG"),
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield router_pb2_grpc.ModelRouterStub(channel)


def chats(otel):  # noqa: F811
    return [s for s in otel.finished() if s.name.startswith("chat ")]


async def test_execute_has_one_client_span_following_genai_conventions(stub, otel):  # noqa: F811
    FakeProvider.enqueue("budget", "Paris is the capital.")
    response = await stub.Execute(
        pb.ExecuteRequest(messages=user("What is the capital of France?"))
    )
    server = otel.span(f"{SERVICE}/Execute")
    (chat,) = chats(otel)
    assert chat.name == "chat tiny"
    assert chat.kind is SpanKind.CLIENT
    assert chat.parent.span_id == server.context.span_id
    attrs = chat.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "fake"
    assert attrs["gen_ai.request.model"] == "tiny"
    assert attrs["gen_ai.response.model"] == "tiny"
    assert attrs["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert attrs["gen_ai.request.stream"] is False
    assert attrs["modelrouter.fallback.position"] == 0
    assert attrs["modelrouter.cost_usd"] == pytest.approx(response.cost_usd)
    assert "error.type" not in attrs
    assert chat.status.status_code is StatusCode.UNSET
    # The outcome on the SERVER span, next to the decision.
    assert server.attributes["modelrouter.selected.model"] == "tiny"
    assert server.attributes["modelrouter.response.model"] == "tiny"
    assert server.attributes["modelrouter.attempts"] == 1
    assert server.attributes["modelrouter.fallback.position"] == 0
    assert server.attributes["modelrouter.cost_usd"] == pytest.approx(response.cost_usd)
    assert server.attributes["modelrouter.decision_id"] == response.decision_id
    # route and classify still nest under the SERVER span.
    assert otel.span("route").parent.span_id == server.context.span_id


async def test_fallback_produces_failed_then_successful_client_spans(stub, otel):  # noqa: F811
    FakeProvider.enqueue(
        "budget",
        ProviderError("server_error", "upstream 500", retryable=True, status_code=500),
        ProviderError("server_error", "upstream 500", retryable=True, status_code=500),
        "answer from small-coder",
    )
    response = await stub.Execute(
        pb.ExecuteRequest(messages=user("What is the capital of France?"))
    )
    assert response.model == "small-coder"
    spans = chats(otel)
    assert [s.name for s in spans] == ["chat tiny", "chat tiny", "chat small-coder"]
    first, retry, fallback = spans
    for failed in (first, retry):
        assert failed.attributes["error.type"] == "server_error"
        assert failed.status.status_code is StatusCode.ERROR
        assert "gen_ai.response.model" not in failed.attributes
    assert retry.attributes["modelrouter.retry"] == 1
    assert fallback.attributes["modelrouter.fallback.position"] == 1
    assert fallback.status.status_code is StatusCode.UNSET
    server = otel.span(f"{SERVICE}/Execute")
    assert server.attributes["modelrouter.attempts"] == 3
    assert server.attributes["modelrouter.fallback.position"] == 1
    assert server.attributes["modelrouter.response.model"] == "small-coder"
    assert server.status.status_code is StatusCode.UNSET

    def total(name, **match):
        return sum(
            p.value
            for p in otel.points(name)
            if all(p.attributes.get(k) == v for k, v in match.items())
        )

    assert total(a.METRIC_RETRIES) == 1
    assert total(a.METRIC_FALLBACKS, **{"modelrouter.model": "small-coder"}) == 1
    # Two consecutive health failures open tiny's circuit (threshold 2).
    assert total(a.METRIC_CIRCUIT_OPENINGS, **{"modelrouter.model": "tiny"}) == 1
    assert total(a.METRIC_COST) == pytest.approx(response.cost_usd)

    durations = otel.points(a.METRIC_OPERATION_DURATION)
    assert sum(p.count for p in durations) == 3
    assert list(durations[0].explicit_bounds) == list(a.OPERATION_DURATION_BUCKETS)
    failed_point = next(p for p in durations if p.attributes.get("error.type") == "server_error")
    assert failed_point.count == 2
    assert failed_point.attributes["gen_ai.request.model"] == "tiny"
    tokens = {p.attributes["gen_ai.token.type"]: p for p in otel.points(a.METRIC_TOKEN_USAGE)}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].sum == response.usage.input_tokens
    assert tokens["output"].sum == response.usage.output_tokens
    assert list(tokens["input"].explicit_bounds) == list(a.TOKEN_USAGE_BUCKETS)


async def test_execute_failure_is_a_server_fault_with_every_attempt_traced(stub, otel):  # noqa: F811
    outage = ProviderError("server_error", "upstream 503", retryable=False, status_code=503)
    FakeProvider.enqueue("budget", outage, outage)
    FakeProvider.enqueue("premium", outage)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Execute(pb.ExecuteRequest(messages=user("What is the capital of France?")))
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    server = otel.span(f"{SERVICE}/Execute")
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["error.type"] == "UNAVAILABLE"
    assert server.attributes["modelrouter.attempts"] == 3
    assert "modelrouter.response.model" not in server.attributes
    spans = chats(otel)
    assert [s.name for s in spans] == ["chat tiny", "chat small-coder", "chat large"]
    assert all(s.status.status_code is StatusCode.ERROR for s in spans)
    assert all(s.parent.span_id == server.context.span_id for s in spans)


async def test_execute_stream_is_traced_like_execute(stub, otel):  # noqa: F811
    FakeProvider.enqueue("budget", "streamed words arrive here")
    deltas, summary = [], None
    async for message in stub.ExecuteStream(pb.ExecuteRequest(messages=user("hello there"))):
        if message.HasField("summary"):
            summary = message.summary
        else:
            deltas.append(message.delta)
    assert "".join(deltas) == "streamed words arrive here"
    server = otel.span(f"{SERVICE}/ExecuteStream")
    assert server.kind is SpanKind.SERVER
    assert server.attributes["rpc.grpc.status_code"] == 0
    (chat,) = chats(otel)
    assert chat.parent.span_id == server.context.span_id
    assert chat.attributes["gen_ai.request.stream"] is True
    assert chat.attributes["gen_ai.usage.output_tokens"] == summary.usage.output_tokens
    assert server.attributes["modelrouter.response.model"] == "tiny"
    assert server.attributes["modelrouter.cost_usd"] == pytest.approx(summary.cost_usd)


async def test_explicit_model_is_the_recorded_selection(stub, otel):  # noqa: F811
    await stub.Execute(pb.ExecuteRequest(messages=user("hello"), model="large"))
    server = otel.span(f"{SERVICE}/Execute")
    assert server.attributes["modelrouter.selected.model"] == "large"
    assert [s.name for s in chats(otel)] == ["chat large"]
    decisions = otel.points(a.METRIC_DECISIONS)
    assert [p.attributes["modelrouter.selected.model"] for p in decisions] == ["large"]


async def test_request_options_are_genai_attributes_and_tools_stay_private(
    modelrouter_server_factory,
    otel,  # noqa: F811
):
    tools_config = CONFIG.replace('"long_context"]', '"long_context", "tools", "json"]')
    server = await modelrouter_server_factory(
        parse_config(tools_config, source="CONFIG"),
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    tool = pb.Tool(name="secret_lookup", parameters_json='{"type": "object"}')
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        await router_pb2_grpc.ModelRouterStub(channel).Execute(
            pb.ExecuteRequest(
                messages=user("hello"),
                tools=[tool],
                top_p=0.5,
                seed=7,
                stop=["END"],
                response_format=pb.ResponseFormat(json_object=True),
                model="large",
            )
        )
    (chat,) = chats(otel)
    attrs = chat.attributes
    assert attrs["gen_ai.request.top_p"] == 0.5
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.output.type"] == "json"
    assert attrs["modelrouter.request.tool_count"] == 1
    # Tool names and stop sequences are content: not recorded without capture_content.
    assert "gen_ai.tool.definitions" not in attrs and "gen_ai.request.stop_sequences" not in attrs
    assert not any(
        "secret_lookup" in str(v) for s in otel.finished() for v in s.attributes.values()
    )


async def test_an_explicit_model_lacking_what_the_request_needs_is_refused(stub):
    tool = pb.Tool(name="lookup", parameters_json='{"type": "object"}')
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi"), tools=[tool], model="tiny"))
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "lacks ['tools']" in raised.value.details()
    assert FakeProvider.history == []
