"""Every bad input gets the right status code and google.rpc details naming the field."""

from __future__ import annotations

import grpc
import pytest

from modelrouter.v1 import router_pb2 as pb

from .conftest import rpc_error_details, user


async def _route_error(stub, **kwargs) -> grpc.aio.AioRpcError:
    kwargs.setdefault("messages", user("What is 2 + 2?"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Route(pb.RouteRequest(**kwargs))
    return caught.value


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = rpc_error_details(error)
    assert details["ErrorInfo"].domain == "modelrouter.dev"
    return {v.field: v.description for v in details["BadRequest"].field_violations}


async def test_empty_messages_is_invalid_argument(modelrouter_stub):
    error = await _route_error(modelrouter_stub.stub, messages=[])
    assert "at least one message" in _violations(error)["messages"]


async def test_last_message_must_be_a_non_empty_user_turn(modelrouter_stub):
    error = await _route_error(
        modelrouter_stub.stub, messages=[pb.Message(role=pb.ROLE_ASSISTANT, content="hi")]
    )
    assert "ROLE_USER" in _violations(error)["messages[0].role"]
    error = await _route_error(modelrouter_stub.stub, messages=user("   "))
    assert "empty" in _violations(error)["messages[0].content"]


@pytest.mark.parametrize("role", [pb.ROLE_UNSPECIFIED, 7])
async def test_unknown_role_names_the_valid_roles(modelrouter_stub, role):
    messages = [pb.Message(role=role, content="x"), *user("hello")]
    error = await _route_error(modelrouter_stub.stub, messages=messages)
    description = _violations(error)["messages[0].role"]
    assert "ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT" in description


async def test_unknown_classifier_lists_loaded_classifiers(modelrouter_stub):
    error = await _route_error(
        modelrouter_stub.stub, constraints=pb.Constraints(classifier="magic")
    )
    description = _violations(error)["constraints.classifier"]
    assert "'magic'" in description and "rules" in description


async def test_unknown_excluded_model_and_provider_are_named_with_choices(modelrouter_stub):
    error = await _route_error(
        modelrouter_stub.stub,
        constraints=pb.Constraints(excluded_models=["tiny", "gpt-9"], allowed_providers=["acme"]),
    )
    violations = _violations(error)
    assert "tiny, small-coder, large" in violations["constraints.excluded_models[1]"]
    assert "budget, premium" in violations["constraints.allowed_providers[0]"]


@pytest.mark.parametrize(
    ("constraints", "field"),
    [
        ({"max_cost_usd": -0.01}, "constraints.max_cost_usd"),
        ({"max_latency_ms": 0}, "constraints.max_latency_ms"),
        ({"min_quality": 1.5}, "constraints.min_quality"),
        ({"min_quality": -0.1}, "constraints.min_quality"),
        ({"max_output_tokens": 0}, "constraints.max_output_tokens"),
        ({"willingness_to_pay": -1}, "constraints.willingness_to_pay"),
        ({"max_cost_usd": float("nan")}, "constraints.max_cost_usd"),
    ],
)
async def test_out_of_range_constraint_is_invalid_argument(modelrouter_stub, constraints, field):
    error = await _route_error(modelrouter_stub.stub, constraints=pb.Constraints(**constraints))
    assert "must be" in _violations(error)[field]


async def test_all_violations_are_reported_at_once(modelrouter_stub):
    error = await _route_error(
        modelrouter_stub.stub,
        messages=[],
        constraints=pb.Constraints(min_quality=2, max_cost_usd=-1),
    )
    assert set(_violations(error)) == {
        "messages",
        "constraints.min_quality",
        "constraints.max_cost_usd",
    }


async def test_get_unknown_model_is_not_found_with_resource_info(modelrouter_stub):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await modelrouter_stub.stub.GetModel(pb.GetModelRequest(name="gpt-9"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    details = rpc_error_details(caught.value)
    assert details["ResourceInfo"].resource_name == "gpt-9"
    assert "tiny" in caught.value.details()


async def test_get_model_without_name_is_invalid_argument(modelrouter_stub):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await modelrouter_stub.stub.GetModel(pb.GetModelRequest())
    assert "name" in _violations(caught.value)


@pytest.mark.parametrize(
    ("constraints", "emptied_by"),
    [
        ({"max_cost_usd": 0.0000001}, "constraints.max_cost_usd"),
        ({"max_latency_ms": 100}, "constraints.max_latency_ms"),
        ({"min_quality": 0.95}, "constraints.min_quality"),
        ({"required_capabilities": ["teleportation"]}, "constraints.required_capabilities"),
        ({"allowed_providers": ["budget"], "min_quality": 0.8}, "constraints.min_quality"),
        ({"excluded_models": ["tiny", "small-coder", "large"]}, "constraints.excluded_models"),
    ],
)
async def test_unsatisfiable_constraints_name_the_constraint(
    modelrouter_stub, constraints, emptied_by
):
    error = await _route_error(modelrouter_stub.stub, constraints=pb.Constraints(**constraints))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = rpc_error_details(error)
    assert details["PreconditionFailure"].violations[0].subject == emptied_by
    assert details["ErrorInfo"].reason == "NO_ELIGIBLE_MODEL"
    assert emptied_by in error.details()


async def test_failing_classifier_plugin_falls_back_to_default(modelrouter_server_factory):
    from modelrouter import Classifier, hookimpl

    class Exploding(Classifier):
        name = "exploding"

        async def classify(self, request):
            raise RuntimeError("model file vanished")

    class Plugin:
        @hookimpl
        def register_classifiers(self, register):
            register(Exploding())

    server = await modelrouter_server_factory(plugins=[Plugin()])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        from modelrouter.v1 import router_pb2_grpc

        stub = router_pb2_grpc.ModelRouterStub(channel)
        response = await stub.Classify(
            pb.ClassifyRequest(
                messages=user("hi"), constraints=pb.Constraints(classifier="exploding")
            )
        )
    assert response.classifier == "rules"
    assert response.features["classifier_error_fallback"] == 1.0


async def test_unexpected_error_is_internal_without_traceback(modelrouter_server_factory):
    from modelrouter import Classifier, hookimpl

    class Broken(Classifier):
        name = "rules-broken"

        async def classify(self, request):
            raise KeyError("secret internals")

    class Plugin:
        @hookimpl
        def register_classifiers(self, register):
            register(Broken())

    from dataclasses import replace

    from modelrouter.config import parse_config
    from modelrouter.testing import TEST_CONFIG

    config = parse_config(TEST_CONFIG)
    config = replace(config, routing=replace(config.routing, default_classifier="rules-broken"))
    server = await modelrouter_server_factory(config, plugins=[Plugin()])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        from modelrouter.v1 import router_pb2_grpc

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router_pb2_grpc.ModelRouterStub(channel).Route(
                pb.RouteRequest(messages=user("hi"))
            )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internals" not in caught.value.details()
    assert "Traceback" not in caught.value.details()
