"""Exporters as an operator configures them: OTLP/gRPC, OTLP/HTTP, Prometheus, OTEL_* vars.

A real OTLP receiver (tests/otlp_receiver.py) is started per test; what the server sends
is read back from it.
"""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest

from modelrouter.config import TelemetryConfig, parse_config
from modelrouter.errors import ConfigError, ProviderError
from modelrouter.telemetry import resolve
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user
from .otlp_receiver import OtlpReceiver, all_strings, attributes

SERVICE = "modelrouter.v1.ModelRouter"


@pytest.fixture
def receiver():
    # Ask for it before modelrouter_server_factory: it must outlive the server, whose
    # shutdown sends the last export.
    started = OtlpReceiver().start()
    yield started
    started.stop()


def config_with(telemetry: str, providers_extra: str = ""):
    text = TEST_CONFIG.replace(
        '[providers.budget]\ntype = "fake"\n',
        '[providers.budget]\ntype = "fake"\n' + providers_extra,
    )
    return parse_config(text + "\n[telemetry]\n" + telemetry, source="CONFIG")


async def call_everything(port: int, prompt: str) -> pb.ExecuteResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        await stub.Classify(pb.ClassifyRequest(messages=user(prompt)))
        await stub.Route(pb.RouteRequest(messages=user(prompt)))
        response = await stub.Execute(pb.ExecuteRequest(messages=user(prompt)))
        async for _ in stub.ExecuteStream(pb.ExecuteRequest(messages=user(prompt))):
            pass
        return response


async def test_server_exports_traces_and_metrics_over_otlp_grpc(
    receiver, modelrouter_server_factory
):
    config = config_with(
        f'otlp_endpoint = "http://127.0.0.1:{receiver.grpc_port}"\n'
        'service_name = "router-under-test"\n'
        "metric_export_interval_s = 3600\n"
    )
    server = await modelrouter_server_factory(config, environ={})
    FakeProvider.enqueue("budget", "Paris.")
    await call_everything(server.port, "What is the capital of France?")
    await asyncio.to_thread(server.telemetry_providers.flush)

    receiver.wait_for(
        lambda: len(receiver.spans()) >= 4 and "modelrouter.decisions" in receiver.metrics()
    )
    names = [s.name for s in receiver.spans()]
    for method in ("Classify", "Route", "Execute", "ExecuteStream"):
        assert f"{SERVICE}/{method}" in names
    assert names.count("chat tiny") == 2
    assert {r["service.name"] for r in receiver.resources()} == {"router-under-test"}
    execute = next(s for s in receiver.spans() if s.name == f"{SERVICE}/Execute")
    assert execute.kind == execute.SPAN_KIND_SERVER
    execute_attrs = attributes(execute.attributes)
    assert execute_attrs["modelrouter.selected.model"] == "tiny"
    assert execute_attrs["rpc.grpc.status_code"] == 0
    chat = next(s for s in receiver.spans() if s.name == "chat tiny")
    assert chat.kind == chat.SPAN_KIND_CLIENT
    assert chat.trace_id in {
        s.trace_id for s in receiver.spans() if s.name.endswith("/Execute")
    } | {s.trace_id for s in receiver.spans() if s.name.endswith("/ExecuteStream")}

    metrics = receiver.metrics()
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    point = duration.histogram.data_points[0]
    assert list(point.explicit_bounds) == [
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ]
    tokens = metrics["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    assert {
        attributes(p.attributes)["gen_ai.token.type"] for p in tokens.histogram.data_points
    } == {"input", "output"}
    decisions = metrics["modelrouter.decisions"].sum.data_points
    assert sum(p.as_int for p in decisions) == 3  # Route, Execute, ExecuteStream
    assert metrics["modelrouter.cost"].unit == "USD"


async def test_otel_environment_selects_otlp_http(receiver, modelrouter_server_factory):
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.http_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=ops,api-key=collector-token",
        "OTEL_SERVICE_NAME": "router-from-env",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    server = await modelrouter_server_factory(config_with(""), environ=environ)
    await call_everything(server.port, "hello")
    await asyncio.to_thread(server.telemetry_providers.flush)
    receiver.wait_for(lambda: receiver.spans() and receiver.metrics())
    assert f"{SERVICE}/Route" in [s.name for s in receiver.spans()]
    resource = receiver.resources()[0]
    assert resource["service.name"] == "router-from-env"
    assert resource["deployment.environment"] == "test"
    assert all(h.get("x-tenant") == "ops" for h in receiver.headers)
    assert "gen_ai.client.operation.duration" in receiver.metrics()


async def test_prometheus_endpoint_serves_router_metrics(modelrouter_server_factory):
    server = await modelrouter_server_factory(config_with("prometheus_port = 0\n"), environ={})
    FakeProvider.enqueue("budget", "Paris.")
    await call_everything(server.port, "What is the capital of France?")
    host, port = server.telemetry_providers.prometheus_address

    def scrape() -> str:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    text = await asyncio.to_thread(scrape)
    assert "gen_ai_client_operation_duration_seconds_bucket{" in text
    assert 'le="81.92"' in text
    assert "gen_ai_client_token_usage" in text
    assert "modelrouter_decisions_total{" in text and 'modelrouter_selected_model="tiny"' in text
    assert "modelrouter_routing_duration_seconds" in text


def test_nothing_is_exported_unless_asked():
    settings = resolve(TelemetryConfig(), {})
    assert settings.traces_endpoint is None and settings.metrics_endpoint is None
    assert settings.prometheus is None and settings.capture_content is False


def test_environment_overrides_the_file():
    config = TelemetryConfig(otlp_endpoint="http://collector:4317", prometheus_port=9100)
    settings = resolve(
        config,
        {
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "otlp,prometheus",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:4317",
            "OTEL_EXPORTER_PROMETHEUS_PORT": "9200",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        },
    )
    assert settings.traces_endpoint is None
    assert settings.metrics_endpoint == "http://metrics:4317"
    assert settings.prometheus == ("127.0.0.1", 9200)
    assert settings.capture_content is True
    assert settings.sample_ratio == 0.25
    http = resolve(TelemetryConfig(otlp_endpoint="http://c:4318", otlp_protocol="http"), {})
    assert http.traces_endpoint == "http://c:4318/v1/traces"
    assert http.metrics_endpoint == "http://c:4318/v1/metrics"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_METRICS_EXPORTER": "statsd"}, "OTEL_METRICS_EXPORTER"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "yes"}, "CAPTURE_MESSAGE_CONTENT"),
    ],
)
def test_bad_environment_names_the_variable(environ, message):
    with pytest.raises(ConfigError, match=message):
        resolve(TelemetryConfig(), environ)


def test_bad_telemetry_table_names_the_key():
    with pytest.raises(ConfigError, match=r"telemetry\.otlp_protocol: expected one of grpc, http"):
        config_with('otlp_protocol = "thrift"\n')
    with pytest.raises(ConfigError, match=r"telemetry\.colour"):
        config_with('colour = "blue"\n')


# -- privacy ---------------------------------------------------------------------------

PROMPT = "Zanzibar-prompt-8841: what is the capital of France?"
COMPLETION = "Quetzalcoatl-completion-5521"
API_KEY = "sk-test-secret-key-77aa"


async def exported_strings(modelrouter_server_factory, receiver, capture: bool) -> str:
    config = config_with(
        f'otlp_endpoint = "http://127.0.0.1:{receiver.grpc_port}"\n'
        f"capture_content = {'true' if capture else 'false'}\n",
        providers_extra='api_key_env = "BUDGET_KEY"\n',
    )
    server = await modelrouter_server_factory(config, environ={"BUDGET_KEY": API_KEY})
    FakeProvider.enqueue(
        "budget",
        # A failing upstream whose message quotes the prompt and the key.
        ProviderError("bad_request", f"rejected {PROMPT} with key {API_KEY}", retryable=False),
        COMPLETION,
    )
    response = await call_everything(server.port, PROMPT)
    assert response.text == COMPLETION
    await asyncio.to_thread(server.telemetry_providers.flush)
    receiver.wait_for(lambda: len(receiver.spans()) >= 5 and receiver.metrics())
    requests = [*receiver.trace_requests, *receiver.metric_requests]
    return "\n".join(s for request in requests for s in all_strings(request))


async def test_no_prompt_completion_or_api_key_is_exported_by_default(
    receiver, modelrouter_server_factory
):
    exported = await exported_strings(modelrouter_server_factory, receiver, capture=False)
    assert "chat small-coder" in exported  # the spans did arrive
    assert "Zanzibar" not in exported
    assert "Quetzalcoatl" not in exported
    assert API_KEY not in exported and "sk-test" not in exported


async def test_content_capture_records_prompt_and_completion_but_never_the_key(
    receiver, modelrouter_server_factory
):
    exported = await exported_strings(modelrouter_server_factory, receiver, capture=True)
    assert PROMPT in exported
    assert COMPLETION in exported
    assert API_KEY not in exported
