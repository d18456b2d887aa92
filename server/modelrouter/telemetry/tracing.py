"""Spans: the SERVER span of each ModelRouter call and the classify/route child spans.

:class:`Telemetry` is what the rest of the server talks to. It is built from injected
tracer and meter providers (no-op ones when none are given) and never touches global
OpenTelemetry state, so tests can give each server its own in-memory exporters.

:class:`TelemetryInterceptor` opens a SERVER span per call of the ModelRouter service
(health checks and reflection are not traced), continuing the caller's W3C trace context
from the ``traceparent`` metadata. The span is current while the handler runs, so the
router's ``classify`` and ``route`` spans and the executor's ``chat`` spans become its
children. Status ERROR marks server faults only; client mistakes leave the status unset
and say what went wrong in ``error.type``.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, NoOpMeter, NoOpMeterProvider
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracer,
    NoOpTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import attributes as a
from .metrics import RouterMetrics
from .stats import Stats

if TYPE_CHECKING:
    from ..router import Decision
    from ..types import Classification, Complexity, Message, RoutingRequest, TaskType

INSTRUMENTATION_NAME = "modelrouter"

#: Status codes that mean the server failed (OpenTelemetry RPC conventions for gRPC
#: servers); every other non-OK code is the caller's mistake or choice.
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(slots=True)
class RequestScope:
    """What telemetry learns about one call while it runs (set by the interceptor)."""

    method: str
    span: Span
    decision: Decision | None = None
    answered_by: str | None = None
    #: The calling tenant, once the servicer has authenticated the call.
    tenant: str = "default"
    attributes: dict[str, Any] = field(default_factory=dict)


_scope: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "modelrouter_request_scope", default=None
)


def current_scope() -> RequestScope | None:
    """The call being served in this task, or ``None`` outside a traced call."""
    return _scope.get()


class Telemetry:
    """Tracer, instruments, stats and the content-capture switch of one server."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        capture_content: bool = False,
        stats: Stats | None = None,
    ) -> None:
        version = _version()
        self.tracer = (tracer_provider or NoOpTracerProvider()).get_tracer(
            INSTRUMENTATION_NAME, version
        )
        meter = (meter_provider or NoOpMeterProvider()).get_meter(INSTRUMENTATION_NAME, version)
        self.metrics = RouterMetrics(meter)
        #: False with the no-op meter (telemetry off): no point is ever exported, so calls
        #: skip building attribute sets and recording them.
        self.metering = not isinstance(meter, NoOpMeter)
        self.capture_content = capture_content
        self.stats = stats or Stats()
        #: False with the no-op tracer (telemetry off): no span is ever recorded, so calls
        #: skip starting spans and switching contexts, which is most of their tracing cost.
        self.tracing = not isinstance(self.tracer, NoOpTracer)
        #: False when neither spans nor metrics are recorded: callers may skip the
        #: ``classifying`` and ``routing`` wrappers (the stats still need ``record_decision``).
        self.observing = self.tracing or self.metering

    # -- router spans ----------------------------------------------------------------------

    @contextlib.contextmanager
    def classifying(
        self, classifier: str, request: RoutingRequest
    ) -> Iterator[Callable[[Classification], Classification]]:
        """Span ``classify {classifier}`` around one classification; call the yielded
        function with the result."""
        started = time.perf_counter()
        with self._child(f"classify {classifier}") as span:
            if self.capture_content:
                span.set_attribute(a.GEN_AI_INPUT_MESSAGES, messages_json(request.messages))

            def observe(classification: Classification) -> Classification:
                elapsed = time.perf_counter() - started
                scope = current_scope()
                server_span = scope.span if scope is not None else None
                # Unsampled or no-op spans: skip building attributes nobody will see.
                if span.is_recording() or (server_span is not None and server_span.is_recording()):
                    attributes = classification_attributes(classification)
                    span.set_attributes(attributes)
                    if server_span is not None:
                        server_span.set_attributes(attributes)
                if self.metering:
                    self.metrics.classifier_duration.record(
                        elapsed, {a.CLASSIFIER: classification.classifier}
                    )
                return classification

            yield observe

    @contextlib.contextmanager
    def routing(self, request: RoutingRequest) -> Iterator[Callable[[Decision], Decision]]:
        """Span ``route`` around classification plus selection; call the yielded function
        with the decision."""
        started = time.perf_counter()
        with self._child("route") as span:

            def observe(decision: Decision) -> Decision:
                elapsed = time.perf_counter() - started
                attributes = None
                if span.is_recording():
                    attributes = decision_attributes(request, decision)
                    span.set_attributes(attributes)
                self.record_decision(request, decision, attributes)
                if self.metering:
                    self.metrics.routing_duration.record(
                        elapsed, {a.CLASSIFIER: decision.classification.classifier}
                    )
                return decision

            yield observe

    def record_decision(
        self, request: RoutingRequest, decision: Decision, attributes: dict[str, Any] | None = None
    ) -> None:
        """The decision the call will act on (Execute calls this again with its final one)."""
        scope = current_scope()
        if scope is not None:
            scope.decision = decision
            scope.tenant = request.tenant
            if scope.span.is_recording():
                scope.span.set_attributes(attributes or decision_attributes(request, decision))

    @contextlib.contextmanager
    def _child(self, name: str) -> Iterator[Span]:
        if not self.tracing:
            yield INVALID_SPAN
            return
        # What start_as_current_span does, without its two nested generator context managers.
        span = self.tracer.start_span(name, record_exception=False, set_status_on_exception=False)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        except Exception as exc:
            mark_error(span, exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def interceptor(self, service: str) -> TelemetryInterceptor:
        return TelemetryInterceptor(self, service)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("modelrouter")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def mark_error(span: Span, exc: BaseException) -> None:
    """``error.type`` is the exception class; status ERROR only for server faults."""
    from ..status import to_status

    span.set_attribute(a.ERROR_TYPE, type(exc).__name__)
    code = _code_from_int(to_status(exc).code) if isinstance(exc, Exception) else None
    if code is None or code in SERVER_FAULTS:
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def _code_from_int(value: int) -> grpc.StatusCode | None:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return None


def classification_attributes(c: Classification) -> dict[str, Any]:
    return {
        a.CLASSIFIER: c.classifier,
        a.COMPLEXITY: c.complexity.name.lower(),
        a.TASK_TYPE: c.task_type.name.lower(),
        a.SCORE: float(c.score),
        a.CONFIDENCE: float(c.confidence),
    }


def decision_attributes(request: RoutingRequest, decision: Decision) -> dict[str, Any]:
    selection = decision.selection
    selected = selection.selected
    return {
        a.DECISION_ID: decision.decision_id,
        a.TENANT: request.tenant,
        **classification_attributes(decision.classification),
        a.SELECTED_MODEL: selected.model.name,
        a.SELECTED_PROVIDER: selected.model.provider,
        a.CANDIDATES: [c.model.name for c in selection.candidates],
        a.CANDIDATE_COUNT: len(selection.candidates),
        a.REASON: selection.reason,
        a.ESTIMATED_COST_USD: selected.estimated_cost_usd,
        a.ESTIMATED_LATENCY_MS: selected.estimated_latency_ms,
        a.ESTIMATED_INPUT_TOKENS: selection.input_tokens,
    }


def messages_json(messages: Sequence[Message]) -> str:
    """Messages in the GenAI conventions' ``gen_ai.input.messages`` shape."""
    return json.dumps(
        [
            {"role": m.role.value, "parts": [{"type": "text", "content": m.content}]}
            for m in messages
        ]
    )


# -- the SERVER span ------------------------------------------------------------------------

Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


class TelemetryInterceptor(grpc.aio.ServerInterceptor):
    """A SERVER span, an ``rpc.server.duration`` point and a stats record per call of
    ``service``; other services pass untouched. Put it first, so it sees auth failures."""

    def __init__(self, telemetry: Telemetry, service: str) -> None:
        self.telemetry = telemetry
        self.service = service
        self.prefix = f"/{service}/"
        # Attribute sets are the same for every call of a method (and status): built once.
        self._base: dict[str, dict[str, Any]] = {}
        self._points: dict[tuple[str, int], dict[str, Any]] = {}
        self._decision_points: dict[tuple[str, str, Complexity, TaskType], dict[str, Any]] = {}

    def base_attributes(self, method: str) -> dict[str, Any]:
        """``rpc.*`` attributes of ``method``'s calls (shared: do not modify)."""
        base = self._base.get(method)
        if base is None:
            base = self._base[method] = {
                a.RPC_SYSTEM: "grpc",
                a.RPC_SERVICE: self.service,
                a.RPC_METHOD: method,
            }
        return base

    def duration_point(self, method: str, code: int) -> dict[str, Any]:
        """Attributes of an ``rpc.server.duration`` point (shared: do not modify)."""
        point = self._points.get((method, code))
        if point is None:
            point = self._points[(method, code)] = {
                **self.base_attributes(method),
                a.RPC_GRPC_STATUS_CODE: code,
            }
        return point

    def decision_point(self, method: str, decision: Decision) -> dict[str, Any]:
        """Attributes of a ``modelrouter.decisions`` point (shared: do not modify)."""
        c = decision.classification
        key = (method, decision.selection.selected.model.name, c.complexity, c.task_type)
        point = self._decision_points.get(key)
        if point is None:
            # Few distinct sets (models x complexities x task types x methods): built once.
            point = self._decision_points[key] = {
                a.SELECTED_MODEL: key[1],
                a.COMPLEXITY: c.complexity.name.lower(),
                a.TASK_TYPE: c.task_type.name.lower(),
                a.RPC_METHOD: method,
            }
        return point

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full_method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or not full_method.startswith(self.prefix):
            return handler
        method = full_method[len(self.prefix) :]
        metadata = handler_call_details.invocation_metadata  # type: ignore[attr-defined]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # the contract has no client-streaming calls

    def _unary(self, behavior: Behavior, method: str, metadata: Any) -> Behavior:
        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _Call(self, method, metadata)
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                call.end(context, exc)
                raise
            call.end(context, None)
            return response

        return traced

    def _stream(self, behavior: Behavior, method: str, metadata: Any) -> Behavior:
        async def traced(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = _Call(self, method, metadata)
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                call.end(context, exc)
                raise
            call.end(context, None)

        return traced


class _Call:
    """One traced call: starts its SERVER span and makes it current; ``end`` closes it."""

    def __init__(self, interceptor: TelemetryInterceptor, method: str, metadata: Any) -> None:
        self.interceptor = interceptor
        self.telemetry = interceptor.telemetry
        self.method = method
        self.started = time.perf_counter()
        self._otel_token: contextvars.Token[otel_context.Context] | None = None
        if self.telemetry.tracing:
            carrier = {str(k).lower(): v for k, v in (metadata or ()) if isinstance(v, str)}
            parent = _PROPAGATOR.extract(carrier)
            self.span = self.telemetry.tracer.start_span(
                f"{interceptor.service}/{method}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes=interceptor.base_attributes(method),
            )
            self._otel_token = otel_context.attach(trace.set_span_in_context(self.span, parent))
        else:
            self.span = INVALID_SPAN
        self.scope = RequestScope(method, self.span)
        self._scope_token = _scope.set(self.scope)

    def end(self, context: grpc.aio.ServicerContext, exc: BaseException | None) -> None:
        code = _status_code(context, exc)
        elapsed_ms = (time.perf_counter() - self.started) * 1000.0
        telemetry = self.telemetry
        scope = self.scope
        decision = scope.decision
        if telemetry.tracing:
            span = self.span
            span.set_attribute(a.RPC_GRPC_STATUS_CODE, code.value[0])
            if code is not grpc.StatusCode.OK:
                span.set_attribute(a.ERROR_TYPE, code.name)
                if code in SERVER_FAULTS:
                    span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
        if telemetry.metering:
            interceptor = self.interceptor
            metrics = telemetry.metrics
            metrics.rpc_duration.record(
                elapsed_ms, interceptor.duration_point(self.method, code.value[0])
            )
            if decision is not None:
                metrics.decisions.add(1, interceptor.decision_point(self.method, decision))
        outcome = (
            "ok"
            if code is grpc.StatusCode.OK
            else ("server_error" if code in SERVER_FAULTS else "client_error")
        )
        if decision is not None:
            telemetry.stats.record_decision(decision.selection, scope.tenant)
        telemetry.stats.record_call(self.method, outcome, elapsed_ms, scope.tenant)
        # Streams may end in another context (cancellation); the reset must not fail the call.
        with contextlib.suppress(ValueError):
            _scope.reset(self._scope_token)
        if self._otel_token is not None:
            otel_context.detach(self._otel_token)


def _status_code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> grpc.StatusCode:
    import asyncio

    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = None
    with contextlib.suppress(Exception):
        code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _code_from_int(code) or grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN
