"""The OpenAI-compatible HTTP face, driven by the official ``openai`` Python SDK against a
real in-process server (gRPC and HTTP in one event loop): unary and streamed answers, tools,
images, routing headers, the decision and feedback routes, errors in OpenAI's shape, auth,
traces and stats shared with the gRPC face."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import grpc
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelrouter.config import parse_config
from modelrouter.errors import ProviderError
from modelrouter.security import hash_key
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .fake_upstreams import (
    Reply,
    Stream,
    openai_chunks,
    openai_completion,
    openai_tool_call_chunks,
    upstream_catalog,
)

KEYS = f"""
[auth]
enabled = true
[[auth.keys]]
tenant = "acme"
sha256 = "{hash_key("sk-acme")}"
"""
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
QUESTION = {"role": "user", "content": "What is the capital of France?"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def sdk(server, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{server.http.port}/v1", api_key=key, max_retries=0
    )


@pytest.fixture
async def face(modelrouter_server_factory):
    server = await modelrouter_server_factory(http_port=-1)
    client = sdk(server)
    yield server, client
    await client.close()


async def post(server, path: str, body: object, headers: dict[str, str] | None = None):
    """A raw POST (for what the SDK would not send): (status, headers, parsed body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{server.http.port}{path}",
            data=data,
            headers={"content-type": "application/json", **(headers or {})},
        ) as response,
    ):
        return response.status, response.headers, json.loads(await response.read())


async def test_auto_routes_and_answers_with_the_catalog_model_and_router_headers(face):
    server, client = face
    FakeProvider.enqueue("budget", "Paris.")
    raw = await client.chat.completions.with_raw_response.create(
        model="auto", messages=[QUESTION], user="end-user-7", max_tokens=50
    )
    completion = raw.parse()
    assert completion.model == "tiny"
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 1
    decision_id = raw.headers["x-modelrouter-decision-id"]
    assert completion.id == f"chatcmpl-{decision_id}"
    assert raw.headers["x-modelrouter-model"] == "tiny"
    assert float(raw.headers["x-modelrouter-cost-usd"]) == pytest.approx(
        completion.model_extra["modelrouter"]["cost_usd"]
    )
    assert FakeProvider.history[-1][1].max_output_tokens == 50
    # The decision id works with gRPC SubmitFeedback, and the call counts in GetStats.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        answer = await stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(decision_id=decision_id, score=1.0, success=True)
        )
        stats = await stub.GetStats(pb.GetStatsRequest())
    assert answer.decision_id == decision_id and not answer.duplicate
    [execute] = [m for m in stats.methods if m.method == "Execute"]
    assert (execute.requests, execute.succeeded) == (1, 1)


async def test_a_catalog_name_pins_the_model(face):
    _, client = face
    completion = await client.chat.completions.create(model="large", messages=[QUESTION])
    assert completion.model == "large"
    assert completion.choices[0].message.content == "echo: What is the capital of France?"


async def test_stream_answers_openai_chunks_with_a_usage_chunk(face):
    _, client = face
    FakeProvider.enqueue("budget", "It is Paris, of course.")
    stream = await client.chat.completions.create(
        model="auto",
        messages=[QUESTION],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It is Paris, of course."
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finish] == ["stop"]
    assert finish[0].model == "tiny"
    assert finish[0].model_extra["modelrouter"]["decision_id"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert len({c.id for c in chunks}) == 1


async def test_images_route_to_a_vision_model_and_reach_it(face):
    _, client = face
    completion = await client.chat.completions.create(
        model="auto",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    assert completion.model == "large"  # the only model with "vision"
    [image] = FakeProvider.history[-1][1].messages[-1].images
    assert (image.media_type, image.data[:4]) == ("image/png", b"\x89PNG")


async def test_routing_headers_and_the_modelrouter_object_constrain_the_choice(face):
    _server, client = face
    completion = await client.chat.completions.create(
        model="auto",
        messages=[QUESTION],
        extra_headers={"x-modelrouter-min-quality": "0.6", "x-session-id": "s-1"},
    )
    assert completion.model == "small-coder"
    completion = await client.chat.completions.create(
        model="auto",
        messages=[QUESTION],
        extra_body={"modelrouter": {"allowed_providers": ["premium"]}},
    )
    assert completion.model == "large"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calling_round_trip_through_the_face(
    stream, openai_upstream, modelrouter_server_factory
):
    server = await modelrouter_server_factory(
        config=parse_config(upstream_catalog("openai", openai_upstream.base_url)),
        environ={"UP_KEY": "sk-up"},
        http_port=-1,
    )
    calls = [("call_1", "get_weather", '{"city": "Paris"}')]
    if stream:
        openai_upstream.enqueue(Stream(openai_tool_call_chunks(calls, model="upstream-model")))
    else:
        openai_upstream.enqueue(
            Reply(body=openai_completion(None, tool_calls=calls, model="upstream-model"))
        )
    openai_upstream.enqueue(Reply(body=openai_completion("18 C and sunny.", model="x")))
    async with sdk(server) as client:
        if stream:
            pieces = await client.chat.completions.create(
                model="auto", messages=[QUESTION], tools=[WEATHER], stream=True
            )
            chunks = [c async for c in pieces]
            deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
            assert deltas[0].id == "call_1" and deltas[0].function.name == "get_weather"
            arguments = "".join(d.function.arguments or "" for d in deltas if d.index == 0)
            assert json.loads(arguments) == {"city": "Paris"}
            finish = [c.choices[0].finish_reason for c in chunks if c.choices]
            assert finish[-1] == "tool_calls"
            assert chunks[-1].model == "tool-model"
            call = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
            call["function"]["arguments"] = arguments
            assistant = {"role": "assistant", "content": None, "tool_calls": [call]}
        else:
            first = await client.chat.completions.create(
                model="auto", messages=[QUESTION], tools=[WEATHER], tool_choice="auto"
            )
            assert first.model == "tool-model"  # text-model lacks "tools"
            assert first.choices[0].finish_reason == "tool_calls"
            [tool_call] = first.choices[0].message.tool_calls
            assert (tool_call.id, tool_call.function.name) == ("call_1", "get_weather")
            assistant = first.choices[0].message.model_dump(exclude_none=True)
        final = await client.chat.completions.create(
            model="auto",
            messages=[
                QUESTION,
                assistant,
                {"role": "tool", "tool_call_id": "call_1", "content": '{"c": 18}'},
            ],
            tools=[WEATHER],
        )
    assert final.choices[0].message.content == "18 C and sunny."
    sent = openai_upstream.bodies[-1]
    assert sent["messages"][-2]["tool_calls"][0]["id"] == "call_1"
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"c": 18}',
    }
    assert sent["tools"][0]["function"]["name"] == "get_weather"


async def error_of(call) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (
            {"messages": [QUESTION, {"role": "tool", "content": "x", "tool_call_id": "nope"}]},
            "messages[1].tool_call_id",
            "names no tool call",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/tiff;base64,AA=="},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "unsupported media type",
        ),
        (
            {"messages": [QUESTION], "tools": [WEATHER, WEATHER]},
            "tools[1].function.name",
            "duplicate tool name",
        ),
        ({"messages": [QUESTION], "temperature": 3}, "temperature", "[0, 2]"),
        ({"messages": [QUESTION], "tool_choice": "get_weather"}, "tool_choice", "names no tool"),
        ({"messages": [QUESTION], "top_p": "high"}, "top_p", "must be a number"),
        ({"messages": [QUESTION], "frobnicate": 1}, "frobnicate", "unrecognized"),
        (
            {"messages": [QUESTION], "modelrouter": {"min_quality": 2}},
            "modelrouter.min_quality",
            "[0, 1]",
        ),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "valid:"),
    ],
)
async def test_bad_input_is_400_naming_the_param(face, body, param, fragment):
    _, client = face
    rest = {k: v for k, v in body.items() if k != "messages"}
    error = await error_of(
        client.chat.completions.create(model="auto", messages=body["messages"], extra_body=rest)
    )
    assert error.status_code == 400
    assert error.body["param"] == param, error.body
    assert error.body["type"] == "invalid_request_error"
    assert error.body["code"] == "invalid_request"
    assert fragment in error.body["message"]


async def test_limits_are_the_grpc_limits_and_the_body_is_bounded(modelrouter_server_factory):
    config = parse_config(
        TEST_CONFIG + "\n[limits]\nmax_messages = 2\n[server]\nmax_message_bytes = 100000\n"
    )
    server = await modelrouter_server_factory(config=config, http_port=-1)
    status, _, body = await post(
        server, "/v1/chat/completions", {"model": "auto", "messages": [QUESTION] * 3}
    )
    assert (status, body["error"]["param"]) == (400, "messages")
    assert "limits.max_messages" in body["error"]["message"]
    status, _, body = await post(
        server,
        "/v1/chat/completions",
        {"model": "auto", "messages": [{"role": "user", "content": "x" * 200_000}]},
    )
    assert (status, body["error"]["code"]) == (413, "request_too_large")
    status, _, body = await post(server, "/v1/chat/completions", b'{"model": "auto", "messages": [')
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, _, body = await post(server, "/v1/chat/completions", b"[" * 50_000 + b"]" * 50_000)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, _, body = await post(server, "/v1/nothing-here", {})
    assert (status, body["error"]["code"]) == (404, "unknown_url")


async def test_unknown_model_is_404_naming_model(face):
    _, client = face
    error = await error_of(client.chat.completions.create(model="gpt-9", messages=[QUESTION]))
    assert isinstance(error, openai.NotFoundError)
    assert (error.body["param"], error.body["code"]) == ("model", "model_not_found")
    assert "tiny" in error.body["message"]  # lists the known ones


async def test_no_eligible_model_and_failed_attempts_are_503(face):
    _, client = face
    error = await error_of(
        client.chat.completions.create(
            model="auto", messages=[QUESTION], extra_headers={"x-modelrouter-min-quality": "0.99"}
        )
    )
    assert (error.status_code, error.body["code"]) == (503, "no_eligible_model")
    failure = ProviderError("server_error", "upstream down", retryable=False, retry_after_s=7)
    FakeProvider.enqueue("budget", failure, failure)
    FakeProvider.enqueue("premium", failure)
    error = await error_of(client.chat.completions.create(model="auto", messages=[QUESTION]))
    assert (error.status_code, error.body["code"]) == (503, "all_attempts_failed")
    assert error.response.headers["retry-after"] == "7"
    assert error.body["type"] == "service_unavailable_error"


async def test_budget_exhausted_is_429_with_retry_after(modelrouter_server_factory):
    config = parse_config(TEST_CONFIG + "\n[budgets.default]\nhour_usd = 0.0\n")
    server = await modelrouter_server_factory(config=config, http_port=-1)
    async with sdk(server) as client:
        error = await error_of(client.chat.completions.create(model="auto", messages=[QUESTION]))
    assert isinstance(error, openai.RateLimitError)
    assert error.body["code"] == "budget_exhausted"
    assert 1 <= int(error.response.headers["retry-after"]) <= 3600


async def test_deadline_from_the_sdk_timeout_is_504(face):
    server, _ = face

    async def slow(call):
        await asyncio.sleep(5)
        return "late"

    FakeProvider.enqueue("budget", slow, slow, slow)
    FakeProvider.enqueue("premium", slow)
    status, _, body = await post(
        server,
        "/v1/chat/completions",
        {"model": "auto", "messages": [QUESTION]},
        {"x-stainless-timeout": "0.3"},
    )
    assert (status, body["error"]["code"]) == (504, "deadline_exceeded")


async def test_auth_is_the_grpc_auth(modelrouter_server_factory):
    server = await modelrouter_server_factory(config=parse_config(TEST_CONFIG + KEYS), http_port=-1)
    async with sdk(server, "sk-wrong") as client:
        error = await error_of(client.chat.completions.create(model="auto", messages=[QUESTION]))
    assert isinstance(error, openai.AuthenticationError)
    assert (error.body["code"], error.body["type"]) == ("unauthenticated", "authentication_error")
    status, _, _body = await post(server, "/v1/route", {"model": "auto", "messages": [QUESTION]})
    assert status == 401
    async with sdk(server, "sk-acme") as client:
        completion = await client.chat.completions.create(model="auto", messages=[QUESTION])
    assert completion.model == "tiny"
    assert server.telemetry.stats.for_tenant("acme").snapshot().requests == 1


async def test_models_lists_auto_and_the_catalog_with_availability(face):
    _, client = face
    models = [m async for m in client.models.list()]
    assert [m.id for m in models] == ["auto", "tiny", "small-coder", "large"]
    assert models[3].owned_by == "premium"
    assert models[3].model_extra["modelrouter"]["available"] is True
    assert "vision" in models[3].model_extra["modelrouter"]["capabilities"]
    assert (await client.models.retrieve("large")).id == "large"
    error = await error_of(client.models.retrieve("gpt-9"))
    assert error.status_code == 404


async def test_route_answers_the_decision_and_feedback_follows(face):
    server, _client = face
    status, headers, decision = await post(
        server,
        "/v1/route",
        {"model": "auto", "messages": [{"role": "user", "content": "Write a Python function."}]},
    )
    assert status == 200
    assert decision["model"] == headers["x-modelrouter-model"]
    assert decision["decision_id"] == headers["x-modelrouter-decision-id"]
    assert decision["reason"]
    roles = [c["role"] for c in decision["candidates"]]
    assert roles[0] == "selected" and set(roles[1:]) <= {"fallback"}
    first = decision["candidates"][0]
    assert first["estimated_cost_usd"] > 0 and first["executable"] is True
    listed = {c["model"] for c in decision["candidates"]} | {
        e["model"] for e in decision["excluded"]
    }
    assert listed == {"tiny", "small-coder", "large"}
    # tiny lacks "code": the rule that removed it is named.
    assert {e["model"]: e["reason"] for e in decision["excluded"]} == {
        "tiny": "excluded by task_type"
    }
    feedback = {"decision_id": decision["decision_id"], "score": 0.8, "success": True}
    assert (await post(server, "/v1/feedback", feedback))[2] == {
        "decision_id": decision["decision_id"],
        "duplicate": False,
    }
    assert (await post(server, "/v1/feedback", feedback))[2]["duplicate"] is True
    status, _, body = await post(server, "/v1/feedback", {**feedback, "decision_id": "nope"})
    assert status == 404
    status, _, body = await post(server, "/v1/feedback", {**feedback, "score": "high"})
    assert (status, body["error"]["param"]) == (400, "score")


async def test_the_http_span_continues_traceparent_and_parents_the_pipeline(
    modelrouter_server_factory,
):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = await modelrouter_server_factory(tracer_provider=provider, http_port=-1)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with sdk(server) as client:
        await client.chat.completions.create(
            model="auto",
            messages=[QUESTION],
            extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
    spans = exporter.get_finished_spans()
    [http] = [s for s in spans if s.name == "POST /v1/chat/completions"]
    assert format(http.context.trace_id, "032x") == trace_id
    assert http.attributes["http.response.status_code"] == 200
    assert http.attributes["http.route"] == "/v1/chat/completions"
    assert http.kind.name == "SERVER"
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == http.context.span_id
    ]
    assert "route" in {s.name for s in children}


async def test_answers_are_not_held_back_by_delayed_acks(face):
    # Without TCP_NODELAY on accepted sockets every keep-alive answer waits ~40 ms for the
    # client's delayed ACK; the median of sequential calls shows it.
    server, _ = face
    url = f"http://127.0.0.1:{server.http.port}/v1/models"
    timings = []
    async with aiohttp.ClientSession() as session:
        for _ in range(21):
            started = asyncio.get_running_loop().time()
            async with session.get(url) as response:
                await response.read()
            timings.append(asyncio.get_running_loop().time() - started)
    assert sorted(timings)[10] < 0.030, timings


async def test_a_client_leaving_a_stream_stops_the_upstream_and_settles(
    openai_upstream, modelrouter_server_factory
):
    server = await modelrouter_server_factory(
        config=parse_config(upstream_catalog("openai", openai_upstream.base_url)),
        environ={"UP_KEY": "sk-up"},
        http_port=-1,
    )
    words = [f"w{i} " for i in range(50)]
    openai_upstream.enqueue(Stream(openai_chunks(words, model="text-upstream"), delay_s=0.2))
    async with sdk(server) as client:
        stream = await client.chat.completions.create(
            model="auto", messages=[QUESTION], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
    await asyncio.wait_for(openai_upstream.disconnected.wait(), 5)
    for _ in range(50):  # the record stage runs as the stream unwinds
        [decision] = await server.state.decisions.recent("default", 1) or [None]
        if decision is not None and decision.outcome != "routed":
            break
        await asyncio.sleep(0.1)
    assert decision is not None and decision.outcome == "error"
    assert await server.state.budgets.in_flight("default") == 0
    [stream_stats] = [
        m for m in server.telemetry.stats.snapshot().methods if m.method == "ExecuteStream"
    ]
    assert stream_stats.requests == 1 and stream_stats.server_errors == 0


async def test_the_tenant_rate_limit_is_shared_with_grpc_and_answers_429(
    modelrouter_server_factory,
):
    config = parse_config(
        TEST_CONFIG + "\n[limits]\ntenant_requests_per_second = 0.01\ntenant_request_burst = 2\n"
    )
    server = await modelrouter_server_factory(config=config, http_port=-1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        await stub.Route(pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]))
    async with sdk(server) as client:
        await client.chat.completions.create(model="auto", messages=[QUESTION])
        error = await error_of(client.chat.completions.create(model="auto", messages=[QUESTION]))
    assert isinstance(error, openai.RateLimitError)
    assert error.body["code"] == "rate_limited"
    assert int(error.response.headers["retry-after"]) >= 50


async def test_an_open_http_face_on_a_public_address_needs_auth_or_consent(
    modelrouter_server_factory,
):
    from modelrouter.errors import ConfigError

    config = parse_config(TEST_CONFIG + '\n[http]\nhost = "0.0.0.0"\n')
    with pytest.raises(ConfigError, match=r"http\.host"):
        await modelrouter_server_factory(config=config, http_port=-1)
    server = await modelrouter_server_factory(config=config, http_port=-1, insecure=True)
    assert server.http.port > 0


async def test_a_stream_names_its_decision_and_model_in_the_response_headers(face):
    _, client = face
    raw = await client.chat.completions.with_raw_response.create(
        model="auto", messages=[QUESTION], stream=True
    )
    chunks = [chunk async for chunk in raw.parse()]
    assert raw.headers["x-modelrouter-model"] == "tiny"
    decision_id = raw.headers["x-modelrouter-decision-id"]
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[0].model_extra["modelrouter"]["decision_id"] == decision_id
