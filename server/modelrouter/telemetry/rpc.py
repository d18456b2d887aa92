"""The SERVER span, ``rpc.server.duration`` and per-method stats of each gRPC call.

One :class:`ServerCall` per call of the ModelRouter service (health checks and
reflection are not traced). Its span continues the caller's W3C trace context from the
``traceparent`` metadata and is handed to the pipeline explicitly, which hangs its
``classify``, ``route`` and ``chat`` spans under it. Status ERROR marks server faults only;
client mistakes leave the status unset and say what went wrong in ``error.type``.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import attributes as a
from .service import Telemetry

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


class RpcTelemetry:
    """Starts a :class:`ServerCall` per call of ``service``; attribute sets built once."""

    def __init__(self, telemetry: Telemetry, service: str) -> None:
        self.telemetry = telemetry
        self.service = service
        self._base: dict[str, dict[str, Any]] = {}
        self._points: dict[tuple[str, int], dict[str, Any]] = {}

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

    def start(self, method: str, metadata: Any) -> ServerCall:
        return ServerCall(self, method, metadata)


class ServerCall:
    """One traced call: its SERVER span, started now; ``end`` closes and counts it."""

    def __init__(self, rpc: RpcTelemetry, method: str, metadata: Any) -> None:
        self.rpc = rpc
        self.method = method
        self.started = time.perf_counter()
        telemetry = rpc.telemetry
        if telemetry.tracing:
            carrier = {str(k).lower(): v for k, v in (metadata or ()) if isinstance(v, str)}
            parent = _PROPAGATOR.extract(carrier)
            self.span = telemetry.tracer.start_span(
                f"{rpc.service}/{method}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes=rpc.base_attributes(method),
            )
        else:
            self.span = INVALID_SPAN

    def end(self, code: grpc.StatusCode, tenant: str) -> None:
        elapsed_ms = (time.perf_counter() - self.started) * 1000.0
        telemetry = self.rpc.telemetry
        if telemetry.tracing:
            span = self.span
            span.set_attribute(a.RPC_GRPC_STATUS_CODE, code.value[0])
            if code is not grpc.StatusCode.OK:
                span.set_attribute(a.ERROR_TYPE, code.name)
                if code in SERVER_FAULTS:
                    span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
        if telemetry.metering:
            telemetry.metrics.rpc_duration.record(
                elapsed_ms, self.rpc.duration_point(self.method, code.value[0])
            )
        if code is grpc.StatusCode.OK:
            outcome = "ok"
        else:
            outcome = "server_error" if code in SERVER_FAULTS else "client_error"
        telemetry.stats.record_call(self.method, outcome, elapsed_ms, tenant)
