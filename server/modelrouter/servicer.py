"""The gRPC servicer: validate, call the pipeline, translate. Nothing else lives here.

Every ModelRouter method goes through :func:`_rpc`, applied once when the class is built:
it opens the call's SERVER span, authenticates the caller, turns domain errors into
statuses (:mod:`.status`) and counts the call. Health and reflection are other services
and pass through none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from . import convert, limits
from .catalog import Catalog
from .config import Config
from .decision import Candidate, StreamOpened
from .errors import InvalidRequest, StreamStalled
from .pipeline import Call, Pipeline
from .plugins import PluginRegistry
from .security import DEFAULT_TENANT, Authenticator, RateLimiter
from .shadow import ShadowEvaluator
from .state import StateServices
from .status import abort, grpc_code
from .telemetry.rpc import RpcTelemetry
from .telemetry.stats import Stats
from .v1 import router_pb2 as pb
from .v1 import router_pb2_grpc

Handler = Callable[..., Any]


def _rpc(method: Handler) -> Handler:
    """Turn ``method(self, request, call)`` into a gRPC handler ``(self, request, context)``.

    A streaming method's messages are written with ``context.write`` under
    ``[execution] stream_idle_timeout_s``: a caller that stops reading cannot hold the
    stream (and the money reserved for it) open until the request timeout.
    """
    name = method.__name__
    streaming = inspect.isasyncgenfunction(method)

    @functools.wraps(method)
    async def handler(
        self: ModelRouterServicer, request: Any, context: grpc.aio.ServicerContext
    ) -> Any:
        metadata = context.invocation_metadata()
        server_call = self.rpc.start(name, metadata)
        tenant = DEFAULT_TENANT
        result = None
        try:
            if isinstance(request, Undecodable):
                raise InvalidRequest.single("request", request.problem)
            tenant = self.authenticator.tenant_for(metadata)
            self.rate_limiter.admit(tenant)
            call = Call(name, tenant, server_call.span, context.time_remaining())
            if not streaming:
                result = await method(self, request, call)
            else:
                await _write_all(method(self, request, call), context, self.stream_idle_timeout_s)
        except asyncio.CancelledError:
            server_call.end(grpc.StatusCode.CANCELLED, tenant)
            raise
        except Exception as error:
            # Counted before the status leaves: a caller reading the trace or the stats
            # right after its error must find the call there.
            server_call.end(grpc_code(error), tenant)
            await abort(context, error)
        server_call.end(grpc.StatusCode.OK, tenant)
        return result

    return handler


class Undecodable:
    """What the server got instead of a request message it could not parse."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _parser(message_type: Any) -> Callable[[bytes], Any]:
    name = message_type.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except DecodeError as error:
            # grpc would answer UNKNOWN and log a traceback: it is the caller's bytes.
            return Undecodable(f"not a valid {name} message: {error}")

    return parse


def add_to_server(servicer: ModelRouterServicer, server: grpc.aio.Server) -> None:
    """Register ``servicer`` like the generated ``add_ModelRouterServicer_to_server``, with
    request parsers that turn bytes that are not the request message into
    INVALID_ARGUMENT instead of grpc's UNKNOWN."""
    service = pb.DESCRIPTOR.services_by_name["ModelRouter"]
    handlers = {}
    for method in service.methods:
        request_type = _MESSAGES[method.input_type.name]
        response_type = _MESSAGES[method.output_type.name]
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_parser(request_type),
            response_serializer=response_type.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )


_MESSAGES: dict[str, Any] = {
    name: getattr(pb, name) for name in pb.DESCRIPTOR.message_types_by_name
}


async def _write_all(
    messages: AsyncGenerator[Any, None], context: grpc.aio.ServicerContext, idle_timeout_s: float
) -> None:
    async with contextlib.aclosing(messages):
        async for message in messages:
            try:
                async with asyncio.timeout(idle_timeout_s):
                    await context.write(message)
            except TimeoutError:
                raise StreamStalled(
                    f"the caller read nothing for {idle_timeout_s:g} s "
                    "(execution.stream_idle_timeout_s)"
                ) from None


class ModelRouterServicer(router_pb2_grpc.ModelRouterServicer):
    def __init__(
        self,
        *,
        config: Config,
        pipeline: Pipeline,
        catalog: Catalog,
        registry: PluginRegistry,
        state: StateServices,
        stats: Stats,
        authenticator: Authenticator,
        rate_limiter: RateLimiter,
        rpc: RpcTelemetry,
        shadow: ShadowEvaluator,
    ) -> None:
        self.config = config
        self.shadow = shadow
        self.pipeline = pipeline
        self.catalog = catalog
        self.registry = registry
        self.state = state
        self.stats = stats
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter
        self.rpc = rpc
        self.stream_idle_timeout_s = config.execution.stream_idle_timeout_s

    def _request(self, request: convert.RequestProto, call: Call) -> Any:
        """The domain request, after the size limits (checked before anything is built)."""
        limits.check_request(request, self.config.limits)
        return convert.request_from_proto(
            request, tenant=call.tenant, max_image_bytes=self.config.limits.max_image_bytes
        )

    @_rpc
    async def Classify(self, request: pb.ClassifyRequest, call: Call) -> pb.ClassifyResponse:
        classification = await self.pipeline.classify(call, self._request(request, call))
        return convert.classification_message(classification)

    @_rpc
    async def Route(self, request: pb.RouteRequest, call: Call) -> pb.RouteResponse:
        decision = await self.pipeline.route(call, self._request(request, call))
        selection = decision.selection

        def candidate(c: Candidate) -> pb.Candidate:
            return convert.candidate_message(c, self.catalog.not_executable_reason(c.model) or "")

        return pb.RouteResponse(
            decision_id=decision.decision_id,
            classification=convert.classification_message(decision.classification),
            selected=candidate(selection.selected),
            fallbacks=[candidate(c) for c in selection.fallbacks],
            reason=selection.reason,
            estimated_input_tokens=selection.input_tokens,
            excluded=[pb.ExcludedModel(model=m, reason=r) for m, r in selection.excluded],
        )

    @_rpc
    async def Execute(self, request: pb.ExecuteRequest, call: Call) -> pb.ExecuteResponse:
        summary = await self.pipeline.execute(
            call, self._request(request, call), temperature=convert.temperature(request)
        )
        return convert.execute_response(summary)

    @_rpc
    async def ExecuteStream(
        self, request: pb.ExecuteRequest, call: Call
    ) -> AsyncIterator[pb.ExecuteStreamResponse]:
        events = self.pipeline.stream(
            call, self._request(request, call), temperature=convert.temperature(request)
        )
        async for event in events:
            if not isinstance(event, StreamOpened):  # the summary says who answered
                yield convert.stream_message(event)

    @_rpc
    async def ListModels(self, request: pb.ListModelsRequest, call: Call) -> pb.ListModelsResponse:
        catalog = self.catalog
        return pb.ListModelsResponse(
            models=[
                convert.model_message(m, catalog.unavailable_reason(m))
                for m in catalog.models.values()
            ]
        )

    @_rpc
    async def GetModel(self, request: pb.GetModelRequest, call: Call) -> pb.GetModelResponse:
        if not request.name:
            raise InvalidRequest.single(
                "name", f"required; valid: {', '.join(self.catalog.models)}"
            )
        model = self.catalog.get(request.name)
        return pb.GetModelResponse(
            model=convert.model_message(model, self.catalog.unavailable_reason(model))
        )

    @_rpc
    async def ListPlugins(
        self, request: pb.ListPluginsRequest, call: Call
    ) -> pb.ListPluginsResponse:
        registry = self.registry
        return pb.ListPluginsResponse(
            plugins=[convert.plugin_message(p) for p in registry.plugins],
            classifiers=sorted(registry.classifiers),
            default_classifier=self.config.routing.default_classifier,
        )

    @_rpc
    async def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, call: Call
    ) -> pb.SubmitFeedbackResponse:
        limits.check_request(request, self.config.limits)
        created = await self.state.feedback.submit(
            call.tenant,
            request.decision_id,
            request.score,
            request.success,
            request.comment,
            request.source,
        )
        return pb.SubmitFeedbackResponse(decision_id=request.decision_id, duplicate=not created)

    @_rpc
    async def GetUsage(self, request: pb.GetUsageRequest, call: Call) -> pb.GetUsageResponse:
        usage = await self.state.budgets.usage(call.tenant)
        shadow = await self.shadow.usage(call.tenant) if self.shadow.enabled else []
        return convert.usage_message(call.tenant, usage, shadow)

    @_rpc
    async def GetStats(self, request: pb.GetStatsRequest, call: Call) -> pb.GetStatsResponse:
        # With auth on a tenant sees its own traffic only; with it off there is one tenant.
        tenant = call.tenant if self.authenticator.enabled else None
        stats = self.stats if tenant is None else self.stats.for_tenant(tenant)
        return convert.stats_message(stats.snapshot(), self.shadow.stats, tenant)
