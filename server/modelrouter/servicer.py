"""The gRPC servicer: validate, call the router, translate. Nothing else lives here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from . import convert
from .errors import InvalidRequest, NotFound
from .execution import Executor, decide
from .router import Router
from .state.auth import DEFAULT_TENANT
from .status import maps_errors
from .telemetry.tracing import current_scope
from .v1 import router_pb2 as pb
from .v1 import router_pb2_grpc


class ModelRouterServicer(router_pb2_grpc.ModelRouterServicer):
    def __init__(self, router: Router, executor: Executor | None = None) -> None:
        self.router = router
        self.executor = executor or Executor(router.catalog, router.config.execution)

    def _tenant(self, context: grpc.aio.ServicerContext) -> str:
        """The calling tenant (``default`` when auth is off); ``Unauthenticated`` on a bad key."""
        state = self.router.state
        if state is None or not state.auth.enabled:
            # Every call is tenant "default", which is also what the call's scope starts with.
            return DEFAULT_TENANT
        tenant = state.auth.tenant_for(context.invocation_metadata())
        if (scope := current_scope()) is not None:
            scope.tenant = tenant
        return tenant

    @maps_errors
    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        routing_request = convert.routing_request(request.messages, request.constraints)
        classification = await self.router.classify(routing_request)
        return convert.classification_message(classification)

    @maps_errors
    async def Route(
        self, request: pb.RouteRequest, context: grpc.aio.ServicerContext
    ) -> pb.RouteResponse:
        routing_request = convert.routing_request(
            request.messages, request.constraints, tenant=self._tenant(context)
        )
        decision = await self.router.route(routing_request)
        selection = decision.selection
        return pb.RouteResponse(
            decision_id=decision.decision_id,
            classification=convert.classification_message(decision.classification),
            selected=convert.candidate_message(selection.selected),
            fallbacks=[convert.candidate_message(c) for c in selection.fallbacks],
            reason=selection.reason,
            estimated_input_tokens=selection.input_tokens,
        )

    @maps_errors
    async def Execute(
        self, request: pb.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExecuteResponse:
        routing_request = convert.routing_request(
            request.messages, request.constraints, model=request.model, tenant=self._tenant(context)
        )
        temperature = convert.temperature(request)
        decision = await decide(self.router, routing_request)
        summary = await self.executor.execute(
            routing_request, decision, timeout_s=context.time_remaining(), temperature=temperature
        )
        return convert.execute_response(summary)

    @maps_errors
    async def ExecuteStream(
        self, request: pb.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ExecuteStreamResponse]:
        routing_request = convert.routing_request(
            request.messages, request.constraints, model=request.model, tenant=self._tenant(context)
        )
        temperature = convert.temperature(request)
        decision = await decide(self.router, routing_request)
        events = self.executor.stream(
            routing_request, decision, timeout_s=context.time_remaining(), temperature=temperature
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, str):
                    yield pb.ExecuteStreamResponse(delta=event)
                else:
                    yield pb.ExecuteStreamResponse(summary=convert.execute_response(event))

    @maps_errors
    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        catalog = self.router.catalog
        return pb.ListModelsResponse(
            models=[
                convert.model_message(m, catalog.unavailable_reason(m))
                for m in catalog.models.values()
            ]
        )

    @maps_errors
    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelResponse:
        if not request.name:
            raise InvalidRequest.single(
                "name", f"required; valid: {', '.join(self.router.catalog.models)}"
            )
        model = self.router.catalog.get(request.name)
        return pb.GetModelResponse(
            model=convert.model_message(model, self.router.catalog.unavailable_reason(model))
        )

    @maps_errors
    async def ListPlugins(
        self, request: pb.ListPluginsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPluginsResponse:
        registry = self.router.registry
        return pb.ListPluginsResponse(
            plugins=[convert.plugin_message(p) for p in registry.plugins],
            classifiers=sorted(registry.classifiers),
            default_classifier=self.router.default_classifier,
        )

    @maps_errors
    async def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitFeedbackResponse:
        tenant = self._tenant(context)
        if self.router.state is None:
            raise NotFound("decision", request.decision_id)
        created = await self.router.state.feedback.submit(
            tenant,
            request.decision_id,
            request.score,
            request.success,
            request.comment,
            request.source,
        )
        return pb.SubmitFeedbackResponse(decision_id=request.decision_id, duplicate=not created)

    @maps_errors
    async def GetUsage(
        self, request: pb.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetUsageResponse:
        tenant = self._tenant(context)
        usage = await self.router.state.budgets.usage(tenant) if self.router.state else []
        return convert.usage_message(tenant, usage)

    @maps_errors
    async def GetStats(
        self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatsResponse:
        stats = self.router.telemetry.stats
        # With auth on a tenant sees its own traffic only; with it off there is one tenant.
        state = self.router.state
        if state is not None and state.auth.enabled:
            stats = stats.for_tenant(self._tenant(context))
        return convert.stats_message(stats.snapshot())
