"""The openai provider end to end: real SDK, real server, fake upstream on localhost."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import grpc
import pytest

from modelrouter import (
    CallOptions,
    ContentPart,
    Image,
    Message,
    ProviderCall,
    ProviderSettings,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolCallAssembler,
    Usage,
)
from modelrouter.config import parse_config
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc
from modelrouter_openai import OpenAIProvider

from .conftest import rpc_error_details, user
from .fake_upstreams import (
    Hang,
    Reply,
    Stream,
    openai_chunks,
    openai_completion,
    openai_error,
    openai_tool_call_chunks,
)
from .test_execute import execute_failure

KEY = "sk-test-SECRET-4f9a2c"


def config(primary_url: str, fallback_url: str | None = None, *, retries: int = 2) -> str:
    fallback = (
        ""
        if fallback_url is None
        else f"""
[providers.backup]
type = "openai"
api_key_env = "BACKUP_KEY"
base_url = "{fallback_url}"

[[models]]
name = "backup-model"
provider = "backup"
upstream_model = "backup-upstream"
input_price_usd_per_mtok = 1.0
output_price_usd_per_mtok = 2.0
context_window_tokens = 100000
typical_latency_ms = 300
quality = 0.5
"""
    )
    return f"""
[execution]
max_attempts_per_model = {retries}
backoff_base_s = 0.001
backoff_max_s = 2.0

[providers.main]
type = "openai"
api_key_env = "MAIN_KEY"
base_url = "{primary_url}"

[[models]]
name = "main-model"
provider = "main"
upstream_model = "gpt-upstream"
input_price_usd_per_mtok = 0.5
output_price_usd_per_mtok = 1.5
context_window_tokens = 8000
typical_latency_ms = 200
quality = 0.5
{fallback}"""


@pytest.fixture
async def connect(modelrouter_server_factory):
    channels = []

    async def start(toml: str, environ: dict[str, str] | None = None):
        env = {"MAIN_KEY": KEY, "BACKUP_KEY": "sk-backup"} if environ is None else environ
        server = await modelrouter_server_factory(config=parse_config(toml), environ=env)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        channels.append(channel)
        return router_pb2_grpc.ModelRouterStub(channel)

    yield start
    for channel in channels:
        await channel.close()


async def test_execute_sends_the_openai_request_and_reports_upstream_usage(
    openai_upstream, connect
):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(
        Reply(body=openai_completion("Paris.", prompt_tokens=21, completion_tokens=3))
    )
    response = await stub.Execute(
        pb.ExecuteRequest(
            messages=[
                pb.Message(role=pb.ROLE_SYSTEM, content="Be brief."),
                *user("Capital of France?"),
            ],
            temperature=0.2,
            constraints=pb.Constraints(max_output_tokens=50),
        )
    )
    assert (response.text, response.model, response.provider) == ("Paris.", "main-model", "main")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 3)
    assert response.cost_usd == pytest.approx((21 * 0.5 + 3 * 1.5) / 1e6)
    [(path, headers, body)] = openai_upstream.requests
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "gpt-upstream"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert (body["max_tokens"], body["temperature"]) == (50, 0.2)


async def test_stream_relays_deltas_and_usage_from_the_final_chunk(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(
        Stream(openai_chunks(["Hel", "lo", "!"], prompt_tokens=9, completion_tokens=3))
    )
    messages = [m async for m in stub.ExecuteStream(pb.ExecuteRequest(messages=user("hi")))]
    assert [m.delta for m in messages[:-1]] == ["Hel", "lo", "!"]
    summary = messages[-1].summary
    assert (summary.usage.input_tokens, summary.usage.output_tokens) == (9, 3)
    assert summary.cost_usd == pytest.approx((9 * 0.5 + 3 * 1.5) / 1e6)
    body = openai_upstream.requests[0][2]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_rate_limit_is_retried_after_the_retry_after_header(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(
        openai_error(
            429,
            "Rate limit reached",
            type_="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": "0.3"},
        ),
        Reply(body=openai_completion("finally")),
    )
    started = time.monotonic()
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    assert time.monotonic() - started >= 0.3
    assert response.text == "finally"
    assert [(a.outcome, a.error_type) for a in response.attempts] == [
        ("error", "rate_limit"),
        ("ok", ""),
    ]
    assert "Rate limit reached" in response.attempts[0].error_message
    assert len(openai_upstream.requests) == 2, "the SDK's own retries are off"


async def test_server_error_on_primary_fails_over_to_the_fallback(
    openai_upstream, anthropic_upstream, connect
):
    # A second OpenAI-compatible upstream; `anthropic_upstream` only provides another port.
    backup = type(openai_upstream)(
        "openai", lambda body: Reply(body=openai_completion("from backup"))
    )
    await backup.start()
    try:
        stub = await connect(config(openai_upstream.base_url, backup.base_url))
        openai_upstream.enqueue(
            *[openai_error(500, "The server had an error", type_="server_error")] * 2
        )
        response = await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
        assert (response.text, response.model) == ("from backup", "backup-model")
        assert [a.error_type for a in response.attempts] == ["server_error", "server_error", ""]
        assert backup.requests[0][2]["model"] == "backup-upstream"
        assert backup.requests[0][1]["authorization"] == "Bearer sk-backup"
    finally:
        await backup.stop()


async def test_upstream_timeout_is_deadline_exceeded(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(Hang())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi")), timeout=0.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_malformed_body_is_classified_and_retried(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(Reply(text="{not json"), Reply(body=openai_completion("fine")))
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    assert response.text == "fine"
    assert response.attempts[0].error_type == "malformed_response"


async def test_context_length_error_is_recognised(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(
        openai_error(
            400,
            "This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [a.error_type for a in execute_failure(caught.value).attempts] == ["context_length"]


async def test_mid_stream_failure_ends_the_stream_with_partial_usage(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url, openai_upstream.base_url))
    openai_upstream.enqueue(Stream(openai_chunks(["Once", " upon"], done=False), abort=True))
    deltas = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in stub.ExecuteStream(pb.ExecuteRequest(messages=user("tell a story"))):
            deltas.append(message.delta)
    assert deltas == ["Once", " upon"]
    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert rpc_error_details(error)["ErrorInfo"].reason == "STREAM_INTERRUPTED"
    failure = execute_failure(error)
    assert failure.stream_started and failure.usage_estimated
    assert failure.usage.output_tokens > 0 and failure.cost_usd > 0
    assert [a.error_type for a in failure.attempts] == ["connection"]
    assert len(openai_upstream.requests) == 1, "no failover once deltas were sent"


async def test_cancelled_call_disconnects_from_the_upstream(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(Hang())
    call = stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    for _ in range(100):
        if openai_upstream.requests:
            break
        await asyncio.sleep(0.02)
    call.cancel()
    await asyncio.wait_for(openai_upstream.disconnected.wait(), 5)


async def test_cancelled_stream_disconnects_from_the_upstream(openai_upstream, connect):
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(Stream(openai_chunks(["tick"] * 200), delay_s=0.05))
    call = stub.ExecuteStream(pb.ExecuteRequest(messages=user("count")))
    first = await call.read()
    assert first.delta == "tick"
    call.cancel()
    await asyncio.wait_for(openai_upstream.disconnected.wait(), 5)


async def test_missing_key_makes_model_unavailable_and_explicit_request_names_the_variable(
    openai_upstream, connect
):
    stub = await connect(config(openai_upstream.base_url), environ={})
    [model] = (await stub.ListModels(pb.ListModelsRequest())).models
    assert not model.available and "MAIN_KEY" in model.unavailable_reason
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi"), model="main-model"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "MAIN_KEY" in caught.value.details()
    assert not openai_upstream.requests


async def test_api_key_never_appears_in_errors_or_logs(openai_upstream, connect, caplog):
    caplog.set_level(logging.DEBUG)
    stub = await connect(config(openai_upstream.base_url))
    openai_upstream.enqueue(
        *[openai_error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key")] * 2
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    failure = execute_failure(caught.value)
    assert failure.attempts[0].error_type == "auth"
    assert len(failure.attempts) == 1, "auth errors are not retried"
    assert "[redacted]" in failure.attempts[0].error_message
    everything = (
        caught.value.details() + str(failure) + caplog.text + str(caught.value.trailing_metadata())
    )
    assert KEY not in everything


# -- Real traffic: tools, images, structured output, sampling options (issue 12) ----------
# The adapter is driven directly (a ProviderCall in, a Completion out) through the official
# SDK against the fake Chat Completions server; the router's wiring is tested elsewhere.

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = Tool("get_time", "", {"type": "object", "properties": {"tz": {"type": "string"}}})


@pytest.fixture
async def openai_adapter(openai_upstream):
    adapter = OpenAIProvider(
        ProviderSettings("main", api_key=KEY, base_url=openai_upstream.base_url)
    )
    yield adapter
    await adapter.aclose()


def provider_call(*messages: Message, **options: object) -> ProviderCall:
    return ProviderCall(
        model="gpt-upstream",
        messages=messages,
        max_output_tokens=64,
        options=CallOptions(**options),  # type: ignore[arg-type]
    )


async def test_openai_sends_tools_images_schema_and_sampling_options(
    openai_upstream, openai_adapter
):
    openai_upstream.enqueue(
        Reply(
            body=openai_completion(
                None, tool_calls=[("call_1", "get_weather", '{"city": "Paris"}')]
            )
        )
    )
    schema = {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}
    completion = await openai_adapter.complete(
        provider_call(
            Message(
                Role.USER,
                parts=(
                    ContentPart(text="What is in these, and the weather?"),
                    ContentPart(image=Image(url="https://example.com/cat.png")),
                    ContentPart(image=Image("image/png", data=PNG)),
                ),
            ),
            tools=(WEATHER, TIME),
            tool_choice="get_weather",
            response_format=ResponseFormat("json_schema", schema=schema, name="reading"),
            stop=("END", "\n\n"),
            top_p=0.9,
            seed=42,
        )
    )
    assert completion.tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)
    assert (completion.text, completion.finish_reason) == ("", "tool_calls")
    [body] = openai_upstream.bodies
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these, and the weather?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
                },
            ],
        }
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": dict(WEATHER.parameters),
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": dict(TIME.parameters)}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reading", "schema": schema, "strict": True},
    }
    assert (body["stop"], body["top_p"], body["seed"]) == (["END", "\n\n"], 0.9, 42)


async def test_openai_agent_loop_sends_the_tool_calls_and_their_results_back(
    openai_upstream, openai_adapter
):
    openai_upstream.enqueue(Reply(body=openai_completion("It is 18 C in Paris and 9 in Oslo.")))
    completion = await openai_adapter.complete(
        provider_call(
            Message(Role.USER, "Weather in Paris and Oslo?"),
            Message(
                Role.ASSISTANT,
                tool_calls=(
                    ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                    ToolCall("call_2", "get_weather", '{"city": "Oslo"}'),
                ),
            ),
            Message(Role.TOOL, '{"c": 18}', tool_call_id="call_1"),
            Message(Role.TOOL, '{"c": 9}', tool_call_id="call_2"),
            tools=(WEATHER,),
            tool_choice="auto",
        )
    )
    assert completion.text == "It is 18 C in Paris and 9 in Oslo."
    assert completion.tool_calls == ()
    [body] = openai_upstream.bodies
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "content": '{"c": 18}', "tool_call_id": "call_1"},
        {"role": "tool", "content": '{"c": 9}', "tool_call_id": "call_2"},
    ]
    assert body["tool_choice"] == "auto"


async def test_openai_json_object_format_and_no_options_sends_no_extra_fields(
    openai_upstream, openai_adapter
):
    await openai_adapter.complete(
        provider_call(
            Message(Role.USER, "JSON please"), response_format=ResponseFormat("json_object")
        )
    )
    await openai_adapter.complete(provider_call(Message(Role.USER, "plain")))
    with_format, plain = openai_upstream.bodies
    assert with_format["response_format"] == {"type": "json_object"}
    extras = {"tools", "tool_choice", "response_format", "stop", "top_p", "seed"}
    assert extras & plain.keys() == set()


async def test_openai_stream_assembles_several_tool_calls_with_interleaved_indices(
    openai_upstream, openai_adapter
):
    calls = [
        ("call_a", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
        ("call_b", "get_time", '{"tz": "Europe/Oslo"}'),
        ("call_c", "get_weather", '{"city": "Lima"}'),
    ]
    openai_upstream.enqueue(Stream(openai_tool_call_chunks(calls, pieces=4)))
    assembler = ToolCallAssembler()
    indices = []
    final = None
    async for chunk in openai_adapter.stream(
        provider_call(Message(Role.USER, "Weather and time?"), tools=(WEATHER, TIME))
    ):
        if chunk.tool_call_delta is not None:
            indices.append(chunk.tool_call_delta.index)
            assembler.add(chunk.tool_call_delta)
        if chunk.usage is not None:
            final = chunk
    # The upstream interleaved the calls' fragments: the indices are not sorted.
    assert indices != sorted(indices)
    assert assembler.tool_calls == tuple(ToolCall(*c) for c in calls)
    assert final is not None
    assert final.finish_reason == "tool_calls"
    assert final.usage == Usage(11, 9)
    assert openai_upstream.bodies[0]["stream"] is True
