"""The SERVER span and per-method stats of each HTTP call.

The span continues the caller's W3C ``traceparent`` and carries the HTTP semantic
conventions (``http.request.method``, ``http.route``, ``http.response.status_code``,
``url.path``, ``server.port``, ``user_agent.original``); it is handed to the pipeline as
``Call.span``, so ``route`` and ``chat`` spans hang under it exactly as under a gRPC call.
Stats count under the gRPC method a route stands for (chat completions are ``Execute`` or
``ExecuteStream``), so ``GetStats`` and the dashboard see both faces. Only server faults
(the gRPC codes that mean one) mark the span as an error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import grpc
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..telemetry import Telemetry
from ..telemetry.rpc import SERVER_FAULTS

_PROPAGATOR = TraceContextTextMapPropagator()


class HttpCall:
    """One traced HTTP call; ``end`` closes the span and counts it."""

    def __init__(
        self,
        telemetry: Telemetry,
        method: str,
        http_method: str,
        route: str,
        headers: Mapping[str, str],
        server_port: int,
    ) -> None:
        self.telemetry = telemetry
        self.method = method
        self.started = time.perf_counter()
        if telemetry.tracing:
            carrier = {k: headers[k] for k in ("traceparent", "tracestate") if k in headers}
            attributes: dict[str, str | int] = {
                "http.request.method": http_method,
                "http.route": route,
                "url.path": route,
                "url.scheme": "http",
                "server.port": server_port,
                "network.protocol.name": "http",
            }
            agent = headers.get("user-agent")
            if agent:
                attributes["user_agent.original"] = agent[:256]
            self.span = telemetry.tracer.start_span(
                f"{http_method} {route}",
                context=_PROPAGATOR.extract(carrier),
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
        else:
            self.span = INVALID_SPAN

    def end(self, http_status: int, code: grpc.StatusCode, tenant: str) -> None:
        """``code``: the gRPC code the outcome maps to (``OK`` on success)."""
        elapsed_ms = (time.perf_counter() - self.started) * 1000.0
        fault = code in SERVER_FAULTS
        if self.telemetry.tracing:
            span = self.span
            span.set_attribute("http.response.status_code", http_status)
            if http_status >= 400:
                span.set_attribute("error.type", str(http_status))
            if fault:
                span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
        if code is grpc.StatusCode.OK:
            outcome = "ok"
        else:
            outcome = "server_error" if fault else "client_error"
        self.telemetry.stats.record_call(self.method, outcome, elapsed_ms, tenant)
