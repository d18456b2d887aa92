"""The modelrouter.v1 contract for real traffic (issue 12): tools, images, structured output,
sessions and sampling options, from proto to domain and back, with every bad field named."""

from __future__ import annotations

import json
import random
import time

import pytest

from modelrouter import (
    CallOptions,
    ContentPart,
    Image,
    Message,
    Provider,
    ProviderCall,
    ProviderError,
    ProviderSettings,
    ResponseFormat,
    Role,
    RoutingRequest,
    Tool,
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    convert,
)
from modelrouter.errors import InvalidRequest
from modelrouter.v1 import router_pb2 as pb
from modelrouter_local import LocalProvider

SCHEMA = json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})


def msg(role: int, content: str = "", **fields: object) -> pb.Message:
    return pb.Message(role=role, content=content, **fields)  # type: ignore[arg-type]


def agent_loop() -> list[pb.Message]:
    """user -> assistant tool call -> tool result: the shape of every agent's second turn."""
    return [
        msg(pb.ROLE_SYSTEM, "Use the tools."),
        msg(pb.ROLE_USER, "Weather in Paris?"),
        msg(
            pb.ROLE_ASSISTANT,
            tool_calls=[
                pb.ToolCall(id="call_1", name="get_weather", arguments_json='{"city":"Paris"}')
            ],
        ),
        msg(pb.ROLE_TOOL, '{"c": 18}', tool_call_id="call_1"),
    ]


def violations(request: object, **kwargs: object) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        convert.request_from_proto(request, **kwargs)  # type: ignore[arg-type]
    return {v.field: v.description for v in caught.value.violations}


def test_an_agent_turn_converts_to_domain_with_tools_options_session_and_metadata():
    request = pb.ExecuteRequest(
        messages=[
            *agent_loop()[:1],
            msg(
                pb.ROLE_USER,
                parts=[
                    pb.ContentPart(text="What is this?"),
                    pb.ContentPart(image=pb.Image(data=b"\x89PNG", media_type="image/png")),
                    pb.ContentPart(image=pb.Image(url="https://example.com/a.jpg")),
                ],
            ),
            *agent_loop()[2:],
        ],
        tools=[pb.Tool(name="get_weather", description="Weather.", parameters_json=SCHEMA)],
        tool_choice="required",
        response_format=pb.ResponseFormat(json_schema=SCHEMA, name="answer", strict=False),
        session_id="conv-42",
        stop=["END"],
        top_p=0.5,
        seed=7,
        metadata={"team": "search"},
        model="m",
    )
    domain = convert.request_from_proto(request, tenant="acme")
    assert domain.messages[1] == Message(
        Role.USER,
        parts=(
            ContentPart(text="What is this?"),
            ContentPart(image=Image("image/png", data=b"\x89PNG")),
            ContentPart(image=Image(url="https://example.com/a.jpg")),
        ),
    )
    assert domain.messages[2].tool_calls == (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    assert domain.messages[3] == Message(Role.TOOL, '{"c": 18}', tool_call_id="call_1")
    assert domain.options == CallOptions(
        tools=(Tool("get_weather", "Weather.", json.loads(SCHEMA)),),
        tool_choice="required",
        response_format=ResponseFormat(
            "json_schema", schema=json.loads(SCHEMA), name="answer", strict=False
        ),
        stop=("END",),
        top_p=0.5,
        seed=7,
    )
    assert (domain.session_id, domain.tenant, domain.model) == ("conv-42", "acme", "m")
    assert dict(domain.metadata) == {"team": "search"}
    with pytest.raises(TypeError):
        domain.metadata["team"] = "x"  # type: ignore[index]
    assert domain.needed_capabilities() == {"tools", "vision", "json"}
    assert domain.prompt == "What is this?"


def test_a_plain_request_needs_nothing_and_keeps_message_construction():
    domain = convert.request_from_proto(pb.RouteRequest(messages=[msg(pb.ROLE_USER, "hi")]))
    assert domain.messages == (Message(Role.USER, "hi"),)
    assert domain.options == CallOptions()
    assert (domain.session_id, dict(domain.metadata)) == (None, {})
    assert domain.needed_capabilities() == frozenset()
    assert Message(Role.USER, "hi").text == "hi"
    assert Message(Role.USER, parts=(ContentPart(text="a"), ContentPart(text="b"))).text == "a\nb"


def test_needed_capabilities_come_from_the_request_itself():
    image = Message(Role.USER, parts=(ContentPart(image=Image(url="https://x.test/i.png")),))
    assert RoutingRequest(messages=(image,)).needed_capabilities() == {"vision"}
    json_only = RoutingRequest(
        messages=(Message(Role.USER, "x"),),
        options=CallOptions(response_format=ResponseFormat("json_object")),
    )
    assert json_only.needed_capabilities() == {"json"}
    # A conversation that already holds tool turns still needs a tool-capable model.
    tool_turns = RoutingRequest(
        messages=(
            Message(Role.USER, "x"),
            Message(Role.ASSISTANT, tool_calls=(ToolCall("c", "t"),)),
            Message(Role.TOOL, "1", tool_call_id="c"),
        )
    )
    assert tool_turns.needed_capabilities() == {"tools"}


def test_the_token_estimate_text_counts_tool_arguments_and_schemas():
    request = convert.request_from_proto(
        pb.RouteRequest(
            messages=agent_loop(),
            tools=[pb.Tool(name="get_weather", parameters_json=SCHEMA)],
        )
    )
    assert '{"city":"Paris"}' in request.text
    assert '"properties"' in request.text


def test_content_and_parts_together_are_refused():
    request = pb.RouteRequest(messages=[msg(pb.ROLE_USER, "hi", parts=[pb.ContentPart(text="hi")])])
    assert "content or parts" in violations(request)["messages[0].parts"]


def test_tool_turns_must_answer_an_earlier_call():
    messages = agent_loop()
    messages.append(msg(pb.ROLE_TOOL, "late", tool_call_id="call_9"))
    messages.append(msg(pb.ROLE_TOOL, "no id"))
    # A call made later does not count for an earlier tool turn.
    messages.insert(1, msg(pb.ROLE_TOOL, "too early", tool_call_id="call_1"))
    found = violations(pb.RouteRequest(messages=messages))
    assert set(found) == {
        "messages[1].tool_call_id",
        "messages[5].tool_call_id",
        "messages[6].tool_call_id",
    }
    assert "call_9" in found["messages[5].tool_call_id"]
    assert "required" in found["messages[6].tool_call_id"]


def test_invalid_json_is_named_by_field_path():
    messages = agent_loop()
    messages[2].tool_calls[0].arguments_json = "{not json"
    found = violations(
        pb.ExecuteRequest(
            messages=messages,
            tools=[
                pb.Tool(name="a", parameters_json=SCHEMA),
                pb.Tool(name="b", parameters_json="[1, 2"),
                pb.Tool(name="c", parameters_json="[1, 2]"),
            ],
            response_format=pb.ResponseFormat(json_schema="nope"),
        )
    )
    assert set(found) == {
        "messages[2].tool_calls[0].arguments_json",
        "tools[1].parameters_json",
        "tools[2].parameters_json",
        "response_format.json_schema",
    }
    assert found["tools[2].parameters_json"] == "must be a JSON object, got a JSON list"


def test_duplicate_tool_names_and_a_tool_choice_naming_no_tool_list_the_valid_choices():
    found = violations(
        pb.RouteRequest(
            messages=[msg(pb.ROLE_USER, "hi")],
            tools=[pb.Tool(name="search"), pb.Tool(name="fetch"), pb.Tool(name="search")],
            tool_choice="browse",
        )
    )
    assert "duplicate tool name 'search'" in found["tools[2].name"]
    assert (
        found["tool_choice"] == "'browse' names no tool; valid: auto, none, required, search, fetch"
    )
    found = violations(pb.RouteRequest(messages=[msg(pb.ROLE_USER, "hi")], tool_choice="required"))
    assert "required needs tools" in found["tool_choice"]


def test_images_over_the_size_limit_or_of_unsupported_types_are_refused():
    parts = [
        pb.ContentPart(image=pb.Image(data=b"x" * 101, media_type="image/png")),
        pb.ContentPart(image=pb.Image(data=b"x", media_type="image/tiff")),
        pb.ContentPart(image=pb.Image(data=b"x")),
        pb.ContentPart(image=pb.Image(url="file:///etc/passwd")),
        pb.ContentPart(),
    ]
    found = violations(
        pb.RouteRequest(messages=[msg(pb.ROLE_USER, parts=parts)]), max_image_bytes=100
    )
    assert "limits.max_image_bytes" in found["messages[0].parts[0].image.data"]
    assert "got 101" in found["messages[0].parts[0].image.data"]
    assert found["messages[0].parts[1].image.media_type"] == (
        "unsupported media type 'image/tiff'; valid: image/png, image/jpeg, image/gif, image/webp"
    )
    assert "required with data" in found["messages[0].parts[2].image.media_type"]
    assert "http" in found["messages[0].parts[3].image.url"]
    assert found["messages[0].parts[4]"] == "set one of text, image"


def test_images_outside_user_turns_and_misplaced_tool_fields_are_refused():
    found = violations(
        pb.RouteRequest(
            messages=[
                msg(
                    pb.ROLE_SYSTEM,
                    parts=[pb.ContentPart(image=pb.Image(url="https://x.test/i.png"))],
                ),
                msg(pb.ROLE_USER, "hi", tool_call_id="call_1"),
                msg(pb.ROLE_USER, "hi", tool_calls=[pb.ToolCall(id="c", name="t")]),
            ]
        )
    )
    assert set(found) == {
        "messages[0].parts[0].image",
        "messages[1].tool_call_id",
        "messages[2].tool_calls",
    }


def test_options_out_of_range_are_refused():
    found = violations(
        pb.ExecuteRequest(
            messages=[msg(pb.ROLE_USER, "hi")],
            stop=["a", "b", "c", "d", "e"],
            top_p=0.0,
            session_id="x" * 129,
            response_format=pb.ResponseFormat(json_object=False),
        )
    )
    assert set(found) == {"stop", "top_p", "session_id", "response_format.json_object"}


def test_validation_is_linear_in_the_input_size():
    # 2,000 tool turns answering 2,000 calls: a quadratic id search would be 4M comparisons
    # per conversion; this stays well under the budget of one request.
    messages = [msg(pb.ROLE_USER, "go")]
    calls = [pb.ToolCall(id=f"c{i}", name="t", arguments_json="{}") for i in range(2000)]
    messages.append(msg(pb.ROLE_ASSISTANT, tool_calls=calls))
    messages += [msg(pb.ROLE_TOOL, "ok", tool_call_id=f"c{i}") for i in range(2000)]
    started = time.perf_counter()
    request = convert.request_from_proto(pb.RouteRequest(messages=messages))
    assert time.perf_counter() - started < 0.5
    assert len(request.messages) == 2002


def test_tool_calls_reach_execute_responses_and_stream_deltas():
    [message] = convert.tool_call_messages([ToolCall("call_1", "f", '{"x": 1}')])
    assert (message.id, message.name, message.arguments_json) == ("call_1", "f", '{"x": 1}')
    chunk = convert.tool_call_delta_message(ToolCallDelta(2, id="call_3", name="g", arguments='{"'))
    assert chunk.HasField("tool_call_delta") and not chunk.HasField("summary")
    assert (
        chunk.tool_call_delta.index,
        chunk.tool_call_delta.id,
        chunk.tool_call_delta.name,
        chunk.tool_call_delta.arguments_fragment,
    ) == (2, "call_3", "g", '{"')


def test_the_assembler_folds_interleaved_deltas_into_complete_calls():
    assembler = ToolCallAssembler()
    assert not assembler
    for delta in [
        ToolCallDelta(1, id="call_b", name="time"),
        ToolCallDelta(0, id="call_a", name="weather", arguments='{"ci'),
        ToolCallDelta(1, arguments='{"tz": '),
        ToolCallDelta(0, arguments='ty": "Paris"}'),
        ToolCallDelta(1, arguments='"UTC"}'),
        ToolCallDelta(2, id="call_c", name="noargs"),
    ]:
        assembler.add(delta)
    assert assembler.tool_calls == (
        ToolCall("call_a", "weather", '{"city": "Paris"}'),
        ToolCall("call_b", "time", '{"tz": "UTC"}'),
        ToolCall("call_c", "noargs", "{}"),
    )


async def test_a_text_only_provider_refuses_tools_images_and_schemas_instead_of_dropping_them():
    # No model is loaded: the refusal happens before anything reaches llama.cpp.
    local = LocalProvider.__new__(LocalProvider)
    Provider.__init__(local, ProviderSettings("local"))
    assert local.supports == frozenset()
    image = Message(Role.USER, parts=(ContentPart(image=Image(url="https://x.test/i.png")),))
    for messages, options in [
        ((Message(Role.USER, "hi"),), CallOptions(tools=(Tool("t"),))),
        ((image,), CallOptions()),
        ((Message(Role.USER, "hi"),), CallOptions(response_format=ResponseFormat("json_object"))),
    ]:
        call = ProviderCall("smollm", messages, max_output_tokens=8, options=options)
        with pytest.raises(ProviderError) as caught:
            async for _ in local.stream(call):
                pass
        assert (caught.value.kind, caught.value.retryable) == ("unsupported", False)
        with pytest.raises(ProviderError):
            await local.complete(call)


def test_hostile_json_nesting_is_invalid_argument_not_a_crash():
    deep = "[" * 60_000
    found = violations(
        pb.RouteRequest(
            messages=[msg(pb.ROLE_USER, "hi")],
            tools=[pb.Tool(name="t", parameters_json=deep)],
            response_format=pb.ResponseFormat(json_schema='{"a":' * 60_000),
        )
    )
    too_deep = "JSON nested too deeply (at most 64 levels)"
    assert found == {"tools[0].parameters_json": too_deep, "response_format.json_schema": too_deep}
    # Shallow enough to parse, too deep to encode later: refused here, not in a span.
    nested = '{"a":' * 900 + "1" + "}" * 900
    request = pb.RouteRequest(
        messages=[msg(pb.ROLE_USER, "hi")], tools=[pb.Tool(name="t", parameters_json=nested)]
    )
    assert violations(request) == {"tools[0].parameters_json": too_deep}
    ok = '{"a":' * 63 + "1" + "}" * 63
    convert.request_from_proto(
        pb.RouteRequest(
            messages=[msg(pb.ROLE_USER, "hi")], tools=[pb.Tool(name="t", parameters_json=ok)]
        )
    )


def random_request(rng: random.Random) -> pb.ExecuteRequest:
    """A request built from plausible and hostile pieces, in random combinations."""
    texts = ["", " ", "hi", "{}", '{"a": 1}', "[1]", "{bad", "é" * 3, "call_1", "x" * 70]
    request = pb.ExecuteRequest()
    for _ in range(rng.randint(0, 5)):
        message = request.messages.add(role=rng.choice([0, 1, 2, 3, 4, 9]))
        if rng.random() < 0.5:
            message.content = rng.choice(texts)
        for _ in range(rng.randint(0, 2)):
            part = message.parts.add()
            kind = rng.choice(["text", "url", "data", "empty"])
            if kind == "text":
                part.text = rng.choice(texts)
            elif kind == "url":
                part.image.url = rng.choice(["https://x.test/a.png", "ftp://x", ""])
            elif kind == "data":
                part.image.data = rng.choice([b"", b"\x89PNG"])
                part.image.media_type = rng.choice(["", "image/png", "text/html"])
        for _ in range(rng.randint(0, 2)):
            message.tool_calls.add(
                id=rng.choice(texts), name=rng.choice(texts), arguments_json=rng.choice(texts)
            )
        if rng.random() < 0.5:
            message.tool_call_id = rng.choice(texts)
    for _ in range(rng.randint(0, 3)):
        request.tools.add(name=rng.choice(texts), parameters_json=rng.choice(texts))
    request.tool_choice = rng.choice(["", "auto", "none", "required", *texts])
    if rng.random() < 0.5:
        if rng.random() < 0.5:
            request.response_format.json_schema = rng.choice(texts)
        else:
            request.response_format.json_object = rng.random() < 0.5
        request.response_format.name = rng.choice(["", "ok", "bad name"])
    request.stop.extend(rng.choice(texts) for _ in range(rng.randint(0, 6)))
    if rng.random() < 0.3:
        request.top_p = rng.choice([0.0, 0.5, 1.0, 2.0, float("nan")])
    if rng.random() < 0.3:
        request.seed = rng.randint(-(2**63), 2**63 - 1)
    request.session_id = rng.choice(["", "s1", "x" * 200, "tab\there"])
    if rng.random() < 0.3:
        request.metadata[rng.choice(["", "k"])] = rng.choice(texts)
    return request


def test_any_request_converts_or_is_invalid_argument_never_a_crash():
    rng = random.Random(12)
    outcomes = set()
    for _ in range(3000):
        request = random_request(rng)
        try:
            domain = convert.request_from_proto(request)
        except InvalidRequest as exc:
            assert exc.violations and all(v.field and v.description for v in exc.violations)
            outcomes.add("invalid")
        else:
            domain.needed_capabilities()
            assert domain.text is not None
            outcomes.add("valid")
    assert outcomes == {"valid", "invalid"}  # the generator reaches both
