"""The Python client sends tools, images, response formats, sessions and sampling options,
and hands back tool calls: checked on the wire against a recording gRPC server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc
from modelrouter_client import (
    JSON_OBJECT,
    AsyncModelRouterClient,
    ModelRouterClient,
    assistant_message,
    image,
    json_schema,
    tool,
    tool_result,
    user_message,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}
CALL = pb.ToolCall(id="call_1", name="get_weather", arguments_json='{"city": "Paris"}')


class Recorder(router_pb2_grpc.ModelRouterServicer):
    """Answers every Execute with one tool call (until a tool result arrives)."""

    def __init__(self) -> None:
        self.requests: list[object] = []

    async def Route(self, request, context):
        self.requests.append(request)
        return pb.RouteResponse(decision_id="d1")

    async def Execute(self, request, context):
        self.requests.append(request)
        if request.messages[-1].role == pb.ROLE_TOOL:
            return pb.ExecuteResponse(text="18 C", finish_reason="stop")
        return pb.ExecuteResponse(tool_calls=[CALL], finish_reason="tool_calls")

    async def ExecuteStream(self, request, context):
        self.requests.append(request)
        yield pb.ExecuteStreamResponse(
            tool_call_delta=pb.ToolCallDelta(index=0, id="call_1", name="get_weather")
        )
        yield pb.ExecuteStreamResponse(summary=pb.ExecuteResponse(tool_calls=[CALL]))


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    server = grpc.aio.server()
    servicer = Recorder()
    router_pb2_grpc.add_ModelRouterServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


async def test_async_client_runs_an_agent_loop_with_tools_images_and_a_session(recorder, tmp_path):
    servicer, target = recorder
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG-bytes")
    weather = tool("get_weather", WEATHER, "Current weather.")
    conversation = [user_message("Weather where this was taken?", image(photo))]
    async with AsyncModelRouterClient(target) as client:
        answer = await client.execute(
            conversation,
            tools=[weather],
            tool_choice="auto",
            session_id="chat-1",
            stop=["END"],
            top_p=0.9,
            seed=3,
            metadata={"team": "search"},
            temperature=0.2,
            max_output_tokens=100,
        )
        assert list(answer.tool_calls) == [CALL]
        conversation.append(assistant_message(answer))
        conversation += [tool_result(c.id, {"c": 18}) for c in answer.tool_calls]
        final = await client.execute(conversation, tools=[weather], session_id="chat-1")
    assert final.text == "18 C"
    first, second = servicer.requests
    assert first.messages[0].parts[0].text == "Weather where this was taken?"
    assert first.messages[0].parts[1].image == pb.Image(
        data=b"\x89PNG-bytes", media_type="image/png"
    )
    assert first.tools[0] == pb.Tool(
        name="get_weather", description="Current weather.", parameters_json=json.dumps(WEATHER)
    )
    assert (first.tool_choice, first.session_id, list(first.stop)) == ("auto", "chat-1", ["END"])
    assert (first.top_p, first.seed, dict(first.metadata)) == (0.9, 3, {"team": "search"})
    assert (first.temperature, first.constraints.max_output_tokens) == (0.2, 100)
    assert [m.role for m in second.messages] == [pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL]
    assert list(second.messages[1].tool_calls) == [CALL]
    assert (second.messages[2].tool_call_id, second.messages[2].content) == ("call_1", '{"c": 18}')
    assert not second.HasField("top_p") and not second.HasField("temperature")


async def test_sync_client_routes_with_a_response_format_and_streams_tool_call_deltas(recorder):
    servicer, target = recorder

    def calls() -> list[pb.ExecuteStreamResponse]:
        with ModelRouterClient(target) as client:
            client.route(
                "Extract the city",
                response_format=json_schema(WEATHER, name="place", strict=False),
                session_id="s",
                excluded_models=["tiny"],
            )
            client.route("Any JSON", response_format=JSON_OBJECT)
            return list(client.execute_stream("hi", tools=[tool("get_weather", WEATHER)]))

    chunks = await asyncio.to_thread(calls)
    schema_route, object_route, stream = servicer.requests
    assert schema_route.response_format == pb.ResponseFormat(
        json_schema=json.dumps(WEATHER), name="place", strict=False
    )
    assert (schema_route.session_id, list(schema_route.constraints.excluded_models)) == (
        "s",
        ["tiny"],
    )
    assert object_route.response_format.json_object is True
    assert stream.tools[0].name == "get_weather"
    assert chunks[0].tool_call_delta.name == "get_weather"
    assert list(chunks[-1].summary.tool_calls) == [CALL]


def test_image_parts_from_urls_and_bytes():
    assert image("https://example.com/a.jpg").image.url == "https://example.com/a.jpg"
    part = image(b"raw", "image/webp")
    assert (part.image.data, part.image.media_type) == (b"raw", "image/webp")
