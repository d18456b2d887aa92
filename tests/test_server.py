from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from modelrouter.v1 import router_pb2 as pb

from .conftest import user


async def test_route_returns_cheapest_eligible_model_with_ordered_fallbacks(modelrouter_stub):
    response = await modelrouter_stub.stub.Route(
        pb.RouteRequest(messages=user("What is the capital of France?"))
    )
    assert response.selected.model == "tiny"
    assert [f.model for f in response.fallbacks] == ["small-coder", "large"]
    costs = [response.selected.estimated_cost_usd] + [
        f.estimated_cost_usd for f in response.fallbacks
    ]
    assert costs == sorted(costs) and costs[0] > 0
    assert response.classification.complexity == pb.COMPLEXITY_SIMPLE
    assert response.classification.classifier == "rules"
    assert "cheapest of 3 eligible models" in response.reason
    assert len(response.decision_id) == 36
    assert response.estimated_input_tokens > 0


async def test_route_decision_ids_are_unique(modelrouter_stub):
    request = pb.RouteRequest(messages=user("hello"))
    ids = {(await modelrouter_stub.stub.Route(request)).decision_id for _ in range(5)}
    assert len(ids) == 5


async def test_classify_reports_classifier_and_features(modelrouter_stub):
    response = await modelrouter_stub.stub.Classify(
        pb.ClassifyRequest(messages=user("Write a Python function that reverses a linked list"))
    )
    assert response.task_type == pb.TASK_TYPE_CODE
    assert response.classifier == "rules"
    assert 0.0 <= response.score <= 1.0 and 0.0 <= response.confidence <= 1.0
    assert "word_count" in response.features


async def test_code_request_skips_model_without_code_capability(modelrouter_stub):
    response = await modelrouter_stub.stub.Route(
        pb.RouteRequest(messages=user("Write a Python function that reverses a linked list"))
    )
    assert response.selected.model == "small-coder"
    assert "tiny" not in [f.model for f in response.fallbacks]


async def test_list_and_get_models(modelrouter_stub):
    models = (await modelrouter_stub.stub.ListModels(pb.ListModelsRequest())).models
    assert [m.name for m in models] == ["tiny", "small-coder", "large"]
    assert all(m.available for m in models)
    large = (await modelrouter_stub.stub.GetModel(pb.GetModelRequest(name="large"))).model
    assert large.output_price_usd_per_mtok == 15.0
    assert large.max_complexity == pb.COMPLEXITY_EXPERT
    assert "vision" in large.capabilities


async def test_list_plugins_reports_builtin_and_example_distribution(modelrouter_stub):
    response = await modelrouter_stub.stub.ListPlugins(pb.ListPluginsRequest())
    by_name = {p.name: p for p in response.plugins}
    assert by_name["rules"].distribution == "modelrouter"
    assert by_name["rules"].hooks == ["register_classifiers"]
    example = by_name["example_length"]
    assert example.distribution == "modelrouter-example-classifier"
    assert example.version == "0.1.0"
    assert example.registered == ["classifier:conversation-length"]
    assert response.default_classifier == "rules"
    assert {"rules", "conversation-length"} <= set(response.classifiers)


async def test_route_through_installed_example_plugin(modelrouter_stub):
    response = await modelrouter_stub.stub.Route(
        pb.RouteRequest(
            messages=user("word " * 150),
            constraints=pb.Constraints(classifier="conversation-length"),
        )
    )
    assert response.classification.classifier == "conversation-length"
    # MODERATE demands quality >= 0.55, which rules out `tiny`.
    assert response.classification.complexity == pb.COMPLEXITY_MODERATE
    assert response.selected.model == "small-coder"


async def test_execute_answers_from_the_cheapest_model(modelrouter_stub):
    response = await modelrouter_stub.stub.Execute(pb.ExecuteRequest(messages=user("hi")))
    assert response.text == "echo: hi"
    assert (response.model, response.provider) == ("tiny", "budget")
    assert [a.outcome for a in response.attempts] == ["ok"]


async def test_health_serving_then_not_serving_on_graceful_stop(modelrouter_server_factory):
    server = await modelrouter_server_factory()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "modelrouter.v1.ModelRouter"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service="modelrouter.v1.ModelRouter"))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        await server.health.enter_graceful_shutdown()
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()


async def test_reflection_lists_services_and_serves_the_proto(modelrouter_stub):
    stub = reflection_pb2_grpc.ServerReflectionStub(modelrouter_stub.channel)

    async def ask(**kwargs):
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**kwargs)]))
        return await anext(aiter(call))

    services = {s.name for s in (await ask(list_services="")).list_services_response.service}
    assert {"modelrouter.v1.ModelRouter", "grpc.health.v1.Health"} <= services
    files = await ask(file_containing_symbol="modelrouter.v1.ModelRouter")
    assert files.file_descriptor_response.file_descriptor_proto


async def test_oversized_request_is_rejected_with_resource_exhausted(
    modelrouter_server_factory, modelrouter_config
):
    from dataclasses import replace

    config = replace(
        modelrouter_config, server=replace(modelrouter_config.server, max_message_bytes=4096)
    )
    server = await modelrouter_server_factory(config)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        from modelrouter.v1 import router_pb2_grpc

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router_pb2_grpc.ModelRouterStub(channel).Route(
                pb.RouteRequest(messages=user("x" * 10000))
            )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
