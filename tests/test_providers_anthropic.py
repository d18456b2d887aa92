"""The anthropic provider end to end: real SDK, real server, fake Messages API on localhost."""

from __future__ import annotations

import base64
import json
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
from modelrouter_anthropic import AnthropicProvider, to_messages_api

from .conftest import rpc_error_details, user
from .fake_upstreams import (
    Reply,
    Stream,
    anthropic_error,
    anthropic_error_event,
    anthropic_events,
    anthropic_message,
    anthropic_tool_events,
)
from .test_execute import execute_failure

KEY = "sk-ant-test-SECRET-77"


def config(base_url: str) -> str:
    return f"""
[execution]
max_attempts_per_model = 2
backoff_base_s = 0.001

[providers.claude]
type = "anthropic"
api_key_env = "CLAUDE_KEY"
base_url = "{base_url}"

[[models]]
name = "haiku"
provider = "claude"
upstream_model = "claude-haiku-upstream"
input_price_usd_per_mtok = 0.8
output_price_usd_per_mtok = 4.0
context_window_tokens = 200000
typical_latency_ms = 300
quality = 0.5
"""


@pytest.fixture
async def stub(anthropic_upstream, modelrouter_server_factory):
    server = await modelrouter_server_factory(
        config=parse_config(config(anthropic_upstream.base_url)), environ={"CLAUDE_KEY": KEY}
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield router_pb2_grpc.ModelRouterStub(channel)


def test_system_turns_go_to_the_system_parameter_and_same_role_turns_merge():
    system, turns = to_messages_api(
        [
            Message(Role.SYSTEM, "You are terse."),
            Message(Role.USER, "first"),
            Message(Role.SYSTEM, "Answer in French."),
            Message(Role.USER, "second"),
            Message(Role.ASSISTANT, ""),
            Message(Role.ASSISTANT, "réponse"),
            Message(Role.USER, "third"),
        ]
    )
    assert system == "You are terse.\n\nAnswer in French."
    assert turns == [
        {"role": "user", "content": "first\n\nsecond"},
        {"role": "assistant", "content": "réponse"},
        {"role": "user", "content": "third"},
    ]


async def test_execute_speaks_the_messages_api(anthropic_upstream, stub):
    anthropic_upstream.enqueue(
        Reply(body=anthropic_message("Bonjour.", input_tokens=30, output_tokens=4))
    )
    response = await stub.Execute(
        pb.ExecuteRequest(
            messages=[pb.Message(role=pb.ROLE_SYSTEM, content="Answer in French."), *user("Hello")],
            temperature=1.7,
        )
    )
    assert (response.text, response.model, response.provider) == ("Bonjour.", "haiku", "claude")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 4)
    assert response.cost_usd == pytest.approx((30 * 0.8 + 4 * 4.0) / 1e6)
    assert response.finish_reason == "stop"
    [(path, headers, body)] = anthropic_upstream.requests
    assert path == "/v1/messages"
    # SDK versions differ: x-api-key, or a bearer token.
    assert KEY in (
        headers.get("x-api-key", ""),
        headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert body["system"] == "Answer in French."
    assert body["messages"] == [{"role": "user", "content": "Hello"}]
    assert body["model"] == "claude-haiku-upstream"
    assert "temperature" not in body, "sent only with send_temperature = true"


async def test_stream_relays_text_deltas_and_usage_from_message_events(anthropic_upstream, stub):
    anthropic_upstream.enqueue(
        Stream(anthropic_events(["Bon", "jour"], input_tokens=12, output_tokens=2))
    )
    messages = [m async for m in stub.ExecuteStream(pb.ExecuteRequest(messages=user("hi")))]
    assert [m.delta for m in messages[:-1]] == ["Bon", "jour"]
    summary = messages[-1].summary
    assert (summary.usage.input_tokens, summary.usage.output_tokens) == (12, 2)
    assert summary.finish_reason == "stop"


async def test_overloaded_529_is_retried(anthropic_upstream, stub):
    anthropic_upstream.enqueue(
        anthropic_error(529, "overloaded_error", "Overloaded", headers={"retry-after": "0.2"}),
        Reply(body=anthropic_message("ok")),
    )
    started = time.monotonic()
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    assert time.monotonic() - started >= 0.2
    assert [a.error_type for a in response.attempts] == ["server_error", ""]
    assert "overloaded_error: Overloaded" in response.attempts[0].error_message


async def test_invalid_request_is_not_retried_and_prompt_too_long_is_context_length(
    anthropic_upstream, stub
):
    anthropic_upstream.enqueue(
        anthropic_error(
            400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    assert [a.error_type for a in execute_failure(caught.value).attempts] == ["context_length"]


async def test_error_event_mid_stream_ends_the_stream(anthropic_upstream, stub):
    events = [
        *anthropic_events(["Half"], done=False),
        anthropic_error_event("overloaded_error", "Overloaded"),
    ]
    anthropic_upstream.enqueue(Stream(events))
    deltas = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in stub.ExecuteStream(pb.ExecuteRequest(messages=user("hi"))):
            deltas.append(message.delta)
    assert deltas == ["Half"]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert rpc_error_details(caught.value)["ErrorInfo"].reason == "STREAM_INTERRUPTED"
    failure = execute_failure(caught.value)
    assert failure.stream_started and failure.usage.input_tokens > 0


async def test_auth_error_never_leaks_the_key(anthropic_upstream, stub, caplog):
    anthropic_upstream.enqueue(
        anthropic_error(401, "authentication_error", f"invalid x-api-key {KEY}")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    failure = execute_failure(caught.value)
    assert failure.attempts[0].error_type == "auth"
    assert KEY not in caught.value.details() + str(failure) + caplog.text


# -- Real traffic: tools, images, structured output, sampling options (issue 12) ----------
# The adapter is driven directly through the official SDK against the fake Messages API.

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
async def adapter(anthropic_upstream):
    provider = AnthropicProvider(
        ProviderSettings("claude", api_key=KEY, base_url=anthropic_upstream.base_url)
    )
    yield provider
    await provider.aclose()


def provider_call(*messages: Message, **options: object) -> ProviderCall:
    return ProviderCall(
        model="claude-haiku-upstream",
        messages=messages,
        max_output_tokens=64,
        options=CallOptions(**options),  # type: ignore[arg-type]
    )


async def test_anthropic_sends_tools_images_and_sampling_options_and_reads_tool_use(
    anthropic_upstream, adapter
):
    anthropic_upstream.enqueue(
        Reply(
            body=anthropic_message(
                "Let me check.", tool_uses=[("toolu_1", "get_weather", {"city": "Paris"})]
            )
        )
    )
    completion = await adapter.complete(
        provider_call(
            Message(Role.SYSTEM, "Be brief."),
            Message(
                Role.USER,
                parts=(
                    ContentPart(text="Where is this? And the weather there?"),
                    ContentPart(image=Image("image/png", data=PNG)),
                    ContentPart(image=Image(url="https://example.com/tower.jpg")),
                ),
            ),
            tools=(WEATHER,),
            tool_choice="required",
            stop=("END",),
            top_p=0.8,
            seed=7,
        )
    )
    assert completion.text == "Let me check."
    assert completion.tool_calls == (ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),)
    assert completion.finish_reason == "tool_calls"
    [body] = anthropic_upstream.bodies
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Where is this? And the weather there?"},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": base64.b64encode(PNG).decode(),
                    },
                },
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://example.com/tower.jpg"},
                },
            ],
        }
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": dict(WEATHER.parameters),
        }
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert (body["stop_sequences"], body["top_p"]) == (["END"], 0.8)
    assert "seed" not in body  # no Anthropic equivalent


async def test_anthropic_agent_loop_merges_consecutive_tool_results_into_one_user_turn(
    anthropic_upstream, adapter
):
    anthropic_upstream.enqueue(Reply(body=anthropic_message("18 C in Paris, 9 C in Oslo.")))
    completion = await adapter.complete(
        provider_call(
            Message(Role.USER, "Weather in Paris and Oslo?"),
            Message(
                Role.ASSISTANT,
                "Checking both.",
                tool_calls=(
                    ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
                    ToolCall("toolu_2", "get_weather", '{"city": "Oslo"}'),
                ),
            ),
            Message(Role.TOOL, '{"c": 18}', tool_call_id="toolu_1"),
            Message(Role.TOOL, '{"c": 9}', tool_call_id="toolu_2"),
            Message(Role.USER, "Answer in one line."),
            tools=(WEATHER,),
            tool_choice="get_weather",
        )
    )
    assert (completion.text, completion.finish_reason) == ("18 C in Paris, 9 C in Oslo.", "stop")
    [body] = anthropic_upstream.bodies
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"c": 18}'},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": '{"c": 9}'},
                {"type": "text", "text": "Answer in one line."},
            ],
        },
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}


async def test_anthropic_structured_output_forces_a_tool_with_the_schema_and_answers_its_input(
    anthropic_upstream, adapter
):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    anthropic_upstream.enqueue(
        Reply(body=anthropic_message("", tool_uses=[("toolu_9", "place", {"city": "Paris"})])),
        Stream(anthropic_tool_events([], [("toolu_9", "place", '{"city": "Lima"}')], pieces=3)),
    )
    call = provider_call(
        Message(Role.USER, "Which city has the Eiffel tower?"),
        response_format=ResponseFormat("json_schema", schema=schema, name="place"),
    )
    completion = await adapter.complete(call)
    assert json.loads(completion.text) == {"city": "Paris"}
    assert (completion.tool_calls, completion.finish_reason) == ((), "stop")
    deltas, final = [], None
    async for chunk in adapter.stream(call):
        assert chunk.tool_call_delta is None
        deltas.append(chunk.delta)
        final = chunk
    assert len([d for d in deltas if d]) == 3  # the schema tool's input, streamed as text
    assert json.loads("".join(deltas)) == {"city": "Lima"}
    assert final is not None and final.finish_reason == "stop"
    for body in anthropic_upstream.bodies:
        assert body["tools"] == [
            {
                "name": "place",
                "description": (
                    "Give the final answer: call this tool with the answer as its input."
                ),
                "input_schema": schema,
            }
        ]
        assert body["tool_choice"] == {"type": "tool", "name": "place"}


async def test_anthropic_stream_assembles_tool_use_input_json_deltas(anthropic_upstream, adapter):
    uses = [
        ("toolu_a", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
        ("toolu_b", "get_weather", '{"city": "Oslo"}'),
    ]
    anthropic_upstream.enqueue(Stream(anthropic_tool_events(["Checking", " both."], uses)))
    assembler = ToolCallAssembler()
    text, final = [], None
    async for chunk in adapter.stream(
        provider_call(Message(Role.USER, "Weather in Paris and Oslo?"), tools=(WEATHER,))
    ):
        text.append(chunk.delta)
        if chunk.tool_call_delta is not None:
            assembler.add(chunk.tool_call_delta)
        final = chunk
    assert "".join(text) == "Checking both."
    assert assembler.tool_calls == tuple(ToolCall(*u) for u in uses)
    assert final is not None
    assert (final.finish_reason, final.usage) == ("tool_calls", Usage(13, 9))


def test_turn_merge_is_linear_in_the_conversation_size():
    # 20,000 consecutive user turns of 200 characters: merging by string concatenation
    # copies ~40 GB; by collecting blocks, 4 MB.
    turns = [Message(Role.USER, "x" * 200) for _ in range(20_000)]
    started = time.perf_counter()
    _, merged = to_messages_api(turns)
    assert time.perf_counter() - started < 1.0
    assert len(merged) == 1 and len(merged[0]["content"]) == 20_000 * 202 - 2
