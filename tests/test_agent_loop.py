"""Issue 12's "done when": a tool-calling agent loop (user -> tool call -> tool result ->
answer) through Execute and ExecuteStream, on the OpenAI and on the Anthropic wire format,
through the real server and the official SDKs, against fake upstreams that record what they
were sent."""

from __future__ import annotations

import json

import grpc
import pytest

from modelrouter.config import parse_config
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import rpc_error_details
from .fake_upstreams import (
    Reply,
    Stream,
    anthropic_message,
    anthropic_tool_events,
    openai_completion,
    openai_tool_call_chunks,
    upstream_catalog,
)

WEATHER = pb.Tool(
    name="get_weather",
    description="Current weather in a city.",
    parameters_json=json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ),
)
QUESTION = pb.Message(role=pb.ROLE_USER, content="What is the weather in Paris?")


@pytest.fixture(params=["openai", "anthropic"])
async def agent(request, openai_upstream, anthropic_upstream, modelrouter_server_factory):
    upstream = openai_upstream if request.param == "openai" else anthropic_upstream
    server = await modelrouter_server_factory(
        config=parse_config(upstream_catalog(request.param, upstream.base_url)),
        environ={"UP_KEY": "sk-agent-test"},
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield request.param, upstream, router_pb2_grpc.ModelRouterStub(channel)


def tool_call_reply(flavour: str, stream: bool) -> Reply | Stream:
    if flavour == "openai":
        calls = [("call_1", "get_weather", '{"city": "Paris"}')]
        if stream:
            return Stream(openai_tool_call_chunks(calls, model="upstream-model"))
        return Reply(body=openai_completion(None, tool_calls=calls, model="upstream-model"))
    if stream:
        uses = [("call_1", "get_weather", '{"city": "Paris"}')]
        return Stream(anthropic_tool_events([], uses, model="upstream-model"))
    return Reply(
        body=anthropic_message(
            "", tool_uses=[("call_1", "get_weather", {"city": "Paris"})], model="upstream-model"
        )
    )


def answer_reply(flavour: str) -> Reply:
    if flavour == "openai":
        return Reply(body=openai_completion("18 C and sunny.", model="upstream-model"))
    return Reply(body=anthropic_message("18 C and sunny.", model="upstream-model"))


def assert_tool_result_sent(flavour: str, body: dict) -> None:
    if flavour == "openai":
        assert body["messages"][-2]["tool_calls"][0]["id"] == "call_1"
        assert body["messages"][-1] == {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": '{"c": 18}',
        }
    else:
        assert body["messages"][-2]["content"][0]["type"] == "tool_use"
        assert body["messages"][-1] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"c": 18}'}],
        }


async def test_agent_loop_through_execute(agent):
    flavour, upstream, stub = agent
    upstream.enqueue(tool_call_reply(flavour, stream=False), answer_reply(flavour))
    first = await stub.Execute(pb.ExecuteRequest(messages=[QUESTION], tools=[WEATHER]))
    # The cheaper text-only model cannot serve a request with tools.
    assert first.model == "tool-model"
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.id, call.name, json.loads(call.arguments_json)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    followup = [
        QUESTION,
        pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=first.tool_calls),
        pb.Message(role=pb.ROLE_TOOL, content='{"c": 18}', tool_call_id=call.id),
    ]
    final = await stub.Execute(pb.ExecuteRequest(messages=followup, tools=[WEATHER]))
    assert (final.text, final.finish_reason, list(final.tool_calls)) == (
        "18 C and sunny.",
        "stop",
        [],
    )
    assert_tool_result_sent(flavour, upstream.bodies[-1])


async def test_agent_loop_through_execute_stream(agent):
    flavour, upstream, stub = agent
    upstream.enqueue(tool_call_reply(flavour, stream=True))
    messages = [
        m async for m in stub.ExecuteStream(pb.ExecuteRequest(messages=[QUESTION], tools=[WEATHER]))
    ]
    deltas = [m.tool_call_delta for m in messages if m.HasField("tool_call_delta")]
    assert deltas and deltas[0].id == "call_1" and deltas[0].name == "get_weather"
    assert json.loads("".join(d.arguments_fragment for d in deltas)) == {"city": "Paris"}
    summary = messages[-1].summary
    assert summary.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in summary.tool_calls] == [("call_1", "get_weather")]
    assert json.loads(summary.tool_calls[0].arguments_json) == {"city": "Paris"}


async def test_a_tool_turn_answering_no_call_is_invalid_argument(agent):
    _, _, stub = agent
    bad = [QUESTION, pb.Message(role=pb.ROLE_TOOL, content="x", tool_call_id="call_9")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=bad, tools=[WEATHER]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = rpc_error_details(caught.value)["BadRequest"].field_violations
    assert violation.field == "messages[1].tool_call_id"
