"""Routing real traffic (issue 12): what a request needs gates the models, sessions keep
their model, Route decides without this server's credentials, and the tier floors give
way to the caller's own constraints when no model meets them."""

from __future__ import annotations

import grpc
import pytest

from modelrouter.config import parse_config
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import rpc_error_details, user

TOOL = pb.Tool(name="get_weather", description="Weather", parameters_json='{"type": "object"}')
CODE_PROMPT = "Write a Python function that merges two sorted lists and explain its complexity"


@pytest.fixture
async def stub_for(modelrouter_server_factory):
    channels = []

    async def start(config=None):
        server = await modelrouter_server_factory(config=config)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        channels.append(channel)
        return router_pb2_grpc.ModelRouterStub(channel)

    yield start
    for channel in channels:
        await channel.close()


def _with_capabilities(extra_large: str) -> object:
    text = TEST_CONFIG.replace(
        'capabilities = ["chat", "code", "vision", "long_context"]',
        f'capabilities = ["chat", "code", "vision", "long_context"{extra_large}]',
    )
    return parse_config(text, source="test")


async def test_tools_go_only_to_models_with_tool_support(stub_for):
    stub = await stub_for(_with_capabilities(', "tools"'))
    routed = await stub.Route(pb.RouteRequest(messages=user("weather in Oslo?"), tools=[TOOL]))
    assert routed.selected.model == "large" and not routed.fallbacks


async def test_a_request_no_model_can_serve_names_what_each_model_lacks(stub_for):
    stub = await stub_for()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Execute(pb.ExecuteRequest(messages=user("weather in Oslo?"), tools=[TOOL]))
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    violations = rpc_error_details(raised.value)["PreconditionFailure"].violations
    assert violations[0].subject == "request.capabilities"
    lacking = {v.subject: v.description for v in violations[1:]}
    assert lacking == {
        "model:tiny": "lacks ['tools']",
        "model:small-coder": "lacks ['tools']",
        "model:large": "lacks ['tools']",
    }
    assert FakeProvider.history == []  # fail closed: never sent without its tools


async def test_images_go_only_to_vision_models(stub_for):
    stub = await stub_for()
    image = pb.ContentPart(image=pb.Image(url="https://example.com/cat.png"))
    message = pb.Message(role=pb.ROLE_USER, parts=[pb.ContentPart(text="what is this?"), image])
    answered = await stub.Execute(pb.ExecuteRequest(messages=[message]))
    assert answered.model == "large"


async def test_the_tier_floor_gives_way_to_the_best_model_the_caller_allows(stub_for):
    stub = await stub_for()
    constraints = pb.Constraints(excluded_models=["small-coder", "large"])
    routed = await stub.Route(pb.RouteRequest(messages=user(CODE_PROMPT), constraints=constraints))
    assert routed.selected.model == "tiny"
    assert "below the tier's floor" in routed.reason


async def test_a_hard_floor_refuses_instead(stub_for):
    stub = await stub_for(
        parse_config(
            TEST_CONFIG.replace(
                "default_max_output_tokens = 100", 'default_max_output_tokens = 100\nfloor = "hard"'
            ),
            source="test",
        )
    )
    constraints = pb.Constraints(excluded_models=["small-coder", "large"])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Route(pb.RouteRequest(messages=user(CODE_PROMPT), constraints=constraints))
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_the_callers_min_quality_stays_hard_under_a_soft_floor(stub_for):
    stub = await stub_for()
    constraints = pb.Constraints(excluded_models=["large"], min_quality=0.8)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Route(pb.RouteRequest(messages=user(CODE_PROMPT), constraints=constraints))
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "constraints.min_quality" in raised.value.details()


KEYLESS = (
    TEST_CONFIG
    + """
[providers.cloud]
type = "openai"
api_key_env = "MODELROUTER_TEST_UNSET_KEY"

[[models]]
name = "cloud-cheap"
provider = "cloud"
input_price_usd_per_mtok = 0.01
output_price_usd_per_mtok = 0.01
context_window_tokens = 100000
typical_latency_ms = 300
quality = 0.95
max_complexity = "expert"
capabilities = ["chat", "code"]
"""
)


async def test_route_chooses_a_model_whose_key_only_the_caller_holds(stub_for):
    stub = await stub_for(parse_config(KEYLESS, source="test"))
    routed = await stub.Route(pb.RouteRequest(messages=user("hello")))
    assert routed.selected.model == "cloud-cheap"
    assert not routed.selected.executable
    assert "MODELROUTER_TEST_UNSET_KEY" in routed.selected.not_executable_reason
    assert all(c.executable for c in routed.fallbacks)
    answered = await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    assert answered.model == "tiny"  # Execute skips what it cannot call


async def test_execute_with_nothing_executable_names_the_missing_key(stub_for):
    stub = await stub_for(parse_config(KEYLESS, source="test"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Execute(
            pb.ExecuteRequest(
                messages=user("hello"), constraints=pb.Constraints(allowed_providers=["cloud"])
            )
        )
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "MODELROUTER_TEST_UNSET_KEY" in str(rpc_error_details(raised.value))


async def test_a_session_keeps_its_model_moves_up_and_never_down(stub_for):
    stub = await stub_for()

    async def turn(text: str, session: str = "s1") -> pb.ExecuteResponse:
        return await stub.Execute(pb.ExecuteRequest(messages=user(text), session_id=session))

    assert (await turn("hi there")).model == "tiny"
    moved = await turn(CODE_PROMPT)
    assert moved.model == "small-coder"  # the turn needs code: the session moves up
    stayed = await turn("thanks!")
    assert stayed.model == "small-coder"  # and does not move back down
    routed = await stub.Route(pb.RouteRequest(messages=user("ok"), session_id="s1"))
    assert "session affinity" in routed.reason
    assert (await turn("hi there", session="other")).model == "tiny"


async def test_sessions_are_shared_by_replicas(backend_config, modelrouter_server_factory):
    if backend_config.backend == "memory":
        pytest.skip("memory state is per process")
    config = backend_config()
    stubs = []
    channels = []
    for _ in range(2):
        server = await modelrouter_server_factory(config=config)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        channels.append(channel)
        stubs.append(router_pb2_grpc.ModelRouterStub(channel))
    first = await stubs[0].Execute(pb.ExecuteRequest(messages=user(CODE_PROMPT), session_id="x"))
    assert first.model == "small-coder"
    second = await stubs[1].Route(pb.RouteRequest(messages=user("thanks"), session_id="x"))
    assert second.selected.model == "small-coder" and "session affinity" in second.reason
    for channel in channels:
        await channel.close()


async def test_cli_sends_tools_images_schema_and_session(
    modelrouter_server_factory, tmp_path, capsys
):
    import asyncio
    import json

    from modelrouter.cli import main

    server = await modelrouter_server_factory(config=_with_capabilities(', "tools", "json"'))
    target = f"127.0.0.1:{server.port}"
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": {"name": "get_weather"}}]))
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object"}')
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    argv = ["route", "weather?", "--target", target, "--json", "--tool-file", str(tools)]
    assert await asyncio.to_thread(main, [*argv, "--session", "cli"]) == 0
    routed = json.loads(capsys.readouterr().out)
    assert routed["selected"]["model"] == "large"
    argv = ["execute", "what is this?", "--target", target, "--image", str(picture)]
    assert await asyncio.to_thread(main, [*argv, "--json-schema", str(schema)]) == 0
    [(_, call)] = FakeProvider.history
    assert call.options.response_format is not None
    assert call.messages[-1].parts[1].image.media_type == "image/png"
