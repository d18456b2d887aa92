"""Python clients for modelrouter: thin, typed wrappers over the generated gRPC stubs.

    from modelrouter_client import ModelRouterClient
    with ModelRouterClient("localhost:50051") as client:
        decision = client.route("Prove that sqrt(2) is irrational", min_quality=0.8)
        print(decision.selected.model, decision.reason)

Responses are the protobuf messages of ``modelrouter.v1``. Errors are ``grpc.RpcError``;
``error_details(err)`` decodes the google.rpc details the server attaches.

Tools, images and structured output (an agent loop)::

    from modelrouter_client import tool, tool_result, assistant_message, user_message, image
    weather = tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})
    conversation = [user_message("Weather where this was taken?", image("photo.jpg"))]
    answer = client.execute(conversation, tools=[weather], session_id="chat-1")
    while answer.tool_calls:
        conversation.append(assistant_message(answer))
        for call in answer.tool_calls:
            conversation.append(tool_result(call.id, run(call.name, call.arguments_json)))
        answer = client.execute(conversation, tools=[weather], session_id="chat-1")
"""

from __future__ import annotations

from ._client import (
    JSON_OBJECT,
    AsyncModelRouterClient,
    ExecuteOptions,
    ModelRouterClient,
    RouteOptions,
    assistant_message,
    build_messages,
    error_details,
    image,
    json_schema,
    tool,
    tool_result,
    user_message,
)

__all__ = [
    "JSON_OBJECT",
    "AsyncModelRouterClient",
    "ExecuteOptions",
    "ModelRouterClient",
    "RouteOptions",
    "assistant_message",
    "build_messages",
    "error_details",
    "image",
    "json_schema",
    "tool",
    "tool_result",
    "user_message",
]
