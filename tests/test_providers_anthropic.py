"""The anthropic provider end to end: real SDK, real server, fake Messages API on localhost."""

from __future__ import annotations

import time

import grpc
import pytest

from modelrouter import Message, Role
from modelrouter.config import parse_config
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc
from modelrouter_anthropic import to_messages_api

from .conftest import rpc_error_details, user
from .fake_upstreams import (
    Reply,
    Stream,
    anthropic_error,
    anthropic_error_event,
    anthropic_events,
    anthropic_message,
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
