"""``POST /v1/messages``: Anthropic's Messages format on the HTTP face, driven by the official
``anthropic`` Python SDK (its ``x-api-key`` auth, streaming events, tool use blocks and error
types) over the same pipeline."""

from __future__ import annotations

import json

import anthropic
import pytest

from modelrouter.config import parse_config
from modelrouter.security import hash_key
from modelrouter.testing import TEST_CONFIG, FakeProvider

from .fake_upstreams import (
    Reply,
    Stream,
    openai_completion,
    openai_tool_call_chunks,
    upstream_catalog,
)

QUESTION = {"role": "user", "content": "What is the weather in Paris?"}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
KEYS = f"""
[auth]
enabled = true
[[auth.keys]]
tenant = "acme"
sha256 = "{hash_key("sk-acme")}"
"""


def sdk(server, key: str = "sk-acme") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=f"http://127.0.0.1:{server.http.port}", api_key=key, max_retries=0
    )


@pytest.fixture
async def server(modelrouter_server_factory):
    return await modelrouter_server_factory(config=parse_config(TEST_CONFIG + KEYS), http_port=-1)


async def test_messages_route_and_answer_in_anthropic_format(server):
    async with sdk(server) as client:
        raw = await client.messages.with_raw_response.create(
            model="auto", max_tokens=64, system="Be brief.", messages=[QUESTION]
        )
    message = await raw.parse()
    assert message.model == "tiny" and message.stop_reason == "end_turn"
    assert message.content[0].text == "echo: What is the weather in Paris?"
    assert raw.headers["x-modelrouter-model"] == "tiny"
    call = FakeProvider.history[-1][1]
    assert call.max_output_tokens == 64
    assert [m.role.value for m in call.messages] == ["system", "user"]


async def test_messages_stream_as_anthropic_events(server):
    FakeProvider.enqueue("budget", "It is sunny.")
    async with (
        sdk(server) as client,
        client.messages.stream(model="auto", max_tokens=64, messages=[QUESTION]) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "It is sunny."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_use_round_trip(streamed, openai_upstream, modelrouter_server_factory):
    server = await modelrouter_server_factory(
        config=parse_config(upstream_catalog("openai", openai_upstream.base_url) + KEYS),
        environ={"UP_KEY": "sk-up"},
        http_port=-1,
    )
    calls = [("call_1", "get_weather", '{"city": "Paris"}')]
    if streamed:
        openai_upstream.enqueue(Stream(openai_tool_call_chunks(calls, model="m")))
    else:
        openai_upstream.enqueue(Reply(body=openai_completion(None, tool_calls=calls, model="m")))
    openai_upstream.enqueue(Reply(body=openai_completion("18 C and sunny.", model="m")))
    async with sdk(server) as client:
        if streamed:
            async with client.messages.stream(
                model="auto", max_tokens=64, messages=[QUESTION], tools=[WEATHER]
            ) as stream:
                first = await stream.get_final_message()
        else:
            first = await client.messages.create(
                model="auto", max_tokens=64, messages=[QUESTION], tools=[WEATHER]
            )
        assert first.stop_reason == "tool_use"
        [use] = [b for b in first.content if b.type == "tool_use"]
        assert (use.id, use.name, use.input) == ("call_1", "get_weather", {"city": "Paris"})
        final = await client.messages.create(
            model="auto",
            max_tokens=64,
            tools=[WEATHER],
            messages=[
                QUESTION,
                {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": '{"c": 18}'}
                    ],
                },
            ],
        )
    assert final.content[0].text == "18 C and sunny."
    sent = openai_upstream.bodies[-1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(sent[-2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": '{"c": 18}'}


async def test_errors_in_anthropic_shape(server):
    async with sdk(server) as client:
        with pytest.raises(anthropic.BadRequestError) as bad:
            await client.messages.create(
                model="auto",
                max_tokens=64,
                messages=[QUESTION, {"role": "user", "content": [{"type": "tool_result"}]}],
            )
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(model="claude-9", max_tokens=64, messages=[QUESTION])
    assert bad.value.body["type"] == "error"
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    assert "messages[1].tool_call_id" in bad.value.body["error"]["message"]
    async with sdk(server, "sk-wrong") as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            await stranger.messages.create(model="auto", max_tokens=64, messages=[QUESTION])
