"""A minimal OTLP receiver for tests and benchmarks: it stores what exporters send.

Speaks OTLP/gRPC (the collector's TraceService and MetricsService) and OTLP/HTTP
(``POST /v1/traces`` and ``/v1/metrics`` with protobuf bodies), on 127.0.0.1 and a free
port, in background threads so that it works whatever event loop the caller runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


class OtlpReceiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    def __init__(self) -> None:
        self.trace_requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self.grpc_port = 0
        self.http_port = 0

    # -- OTLP/gRPC --------------------------------------------------------------------------
    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.headers.append(dict(context.invocation_metadata()))
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.trace_requests.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()
            self.metric_requests.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    def start(self) -> OtlpReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, server)
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kinds = {
                    "/v1/traces": (
                        trace_service_pb2.ExportTraceServiceRequest,
                        receiver.trace_requests,
                    ),
                    "/v1/metrics": (
                        metrics_service_pb2.ExportMetricsServiceRequest,
                        receiver.metric_requests,
                    ),
                }
                if self.path not in kinds:
                    self.send_response(404)
                    self.end_headers()
                    return
                message_type, store = kinds[self.path]
                with receiver._lock:
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                    store.append(message_type.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self._http.server_port
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(0)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    # -- reading what arrived ----------------------------------------------------------------
    def spans(self) -> list[Any]:
        with self._lock:
            return [
                span
                for request in self.trace_requests
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            ]

    def resources(self) -> list[dict[str, Any]]:
        with self._lock:
            requests = [*self.trace_requests, *self.metric_requests]
        found = []
        for request in requests:
            groups = getattr(request, "resource_spans", None) or getattr(
                request, "resource_metrics", []
            )
            found.extend(attributes(group.resource.attributes) for group in groups)
        return found

    def metrics(self) -> dict[str, Any]:
        """The last exported version of each metric, by name."""
        with self._lock:
            requests = list(self.metric_requests)
        latest: dict[str, Any] = {}
        for request in requests:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        latest[metric.name] = metric
        return latest

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the receiver did not get the expected data in time")
            time.sleep(0.02)


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind) if kind else None


def attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in key_values}


def all_strings(message: Any) -> Iterator[str]:
    """Every string anywhere in a protobuf message (attribute values, names, keys...)."""
    for field, field_value in message.ListFields():
        repeated = getattr(field, "is_repeated", None)
        if repeated is None:
            repeated = field.label == field.LABEL_REPEATED
        items = field_value if repeated else [field_value]
        for item in items:
            if field.type == field.TYPE_MESSAGE:
                yield from all_strings(item)
            elif isinstance(item, str):
                yield item
            elif isinstance(item, bytes):
                yield item.decode("utf-8", "replace")
