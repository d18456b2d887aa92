"""The adaptive policy learns from feedback, explores boundedly and only among eligible models."""

from __future__ import annotations

import random

import grpc

from modelrouter.config import AdaptiveConfig, parse_config
from modelrouter.state.adaptive import AdaptivePolicy
from modelrouter.state.memory import MemoryHotState
from modelrouter.testing import TEST_CONFIG
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user

PROMPT = "Write a Python function that reverses a linked list"  # small-coder, then large


async def test_feedback_moves_routing_to_the_model_that_earns_it(modelrouter_server_factory):
    config = parse_config(
        TEST_CONFIG + "\n[adaptive]\nenabled = true\nexplore_fraction = 0.0\ncost_weight = 1.0\n"
    )
    server = await modelrouter_server_factory(config=config)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        first = await stub.Route(pb.RouteRequest(messages=user(PROMPT)))
        assert first.selected.model == "large"  # prior: catalog quality 0.9 vs 0.65
        assert "adaptive: exploited large" in first.reason
        for i in range(20):
            routed = await stub.Route(
                pb.RouteRequest(
                    messages=user(PROMPT),
                    constraints=pb.Constraints(excluded_models=["small-coder"]),
                )
            )
            await stub.SubmitFeedback(
                pb.SubmitFeedbackRequest(
                    decision_id=routed.decision_id, score=0.0, success=False, source=str(i)
                )
            )
        after = await stub.Route(pb.RouteRequest(messages=user(PROMPT)))
    assert after.selected.model == "small-coder"
    assert "exploited small-coder" in after.reason


async def test_exploration_is_bounded_and_stays_among_eligible_candidates():
    from modelrouter.selection import select
    from modelrouter.types import Classification, Complexity, RoutingRequest, TaskType

    config = parse_config(TEST_CONFIG)
    request = RoutingRequest.from_prompt(PROMPT)
    classification = Classification(Complexity.MODERATE, TaskType.CODE, 0.5, 0.9, "test")
    selection = select(request, classification, config.models, config.routing, lambda m: None)
    eligible = {c.model.name for c in selection.candidates}
    policy = AdaptivePolicy(
        AdaptiveConfig(enabled=True, explore_fraction=0.2, cost_weight=1.0),
        MemoryHotState(),
        random.Random(7),
    )
    choices = [await policy.choose(classification, selection.candidates) for _ in range(1000)]
    explored = sum(c.explored for c in choices)
    assert 0 < explored <= 200 + 40  # at most ~explore_fraction of requests
    assert {c.candidate.model.name for c in choices} <= eligible
    assert all(("explored" in c.note) == c.explored for c in choices)


async def test_adaptive_is_switchable_per_tenant(modelrouter_server_factory):
    config = parse_config(TEST_CONFIG + '\n[adaptive]\ntenants = ["someone-else"]\n')
    server = await modelrouter_server_factory(config=config)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        routed = await router_pb2_grpc.ModelRouterStub(channel).Route(
            pb.RouteRequest(messages=user(PROMPT))
        )
    assert routed.selected.model == "small-coder" and "adaptive" not in routed.reason


async def test_one_tenants_feedback_cannot_flip_another_tenants_model(stores):
    # The attack of issue 11: tenant A floods negative feedback (each with another source)
    # on the model tenant B is routed to. B's routing must not move; A's may.
    from modelrouter.selection import select
    from modelrouter.state.feedback import FeedbackService
    from modelrouter.state.interfaces import DecisionRecord
    from modelrouter.types import Classification, Complexity, RoutingRequest, TaskType

    config = parse_config(TEST_CONFIG)
    classification = Classification(Complexity.MODERATE, TaskType.CODE, 0.5, 0.9, "test")
    request = RoutingRequest.from_prompt(PROMPT)
    candidates = select(
        request, classification, config.models, config.routing, lambda m: None
    ).candidates
    policy = AdaptivePolicy(
        AdaptiveConfig(enabled=True, explore_fraction=0.0, cost_weight=1.0), stores.hot
    )
    before = await policy.choose(classification, candidates, "b")
    feedback = FeedbackService(stores.decisions, policy, max_sources=32)
    victim = before.candidate.model.name
    for i in range(40):
        await stores.decisions.record(
            DecisionRecord(
                f"a{i}", "a", 0.0, "route", "MODERATE", "CODE", "rules", (), victim, 0.0, "x"
            )
        )
        for source in range(3):  # several sources on one decision count once
            await feedback.submit("a", f"a{i}", 0.0, False, source=f"s{source}")
    assert (await policy.choose(classification, candidates, "b")).candidate is before.candidate
    assert (await policy.choose(classification, candidates, "a")).candidate is not before.candidate
