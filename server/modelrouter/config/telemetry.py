"""The ``[telemetry]`` table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .reader import Reader


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The ``[telemetry]`` table. Standard ``OTEL_*`` variables override it (docs/telemetry.md)."""

    #: ``service.name`` of every span and metric.
    service_name: str = "modelrouter"
    #: Record prompt and completion text on spans. Off: text never leaves the process.
    capture_content: bool = False
    #: OTLP collector, for example ``http://collector:4317`` (grpc) or ``http://collector:4318``
    #: (http). Unset: no OTLP export.
    otlp_endpoint: str | None = None
    #: ``grpc`` (OTLP/gRPC) or ``http`` (OTLP/HTTP with protobuf bodies).
    otlp_protocol: str = "grpc"
    #: Extra headers sent with every export (for example an API key of the backend).
    otlp_headers: Mapping[str, str] = field(default_factory=dict)
    #: Export traces / metrics over OTLP when an endpoint is set.
    export_traces: bool = True
    export_metrics: bool = True
    #: Seconds between metric exports over OTLP.
    metric_export_interval_s: float = 60.0
    #: Serve Prometheus metrics on this port (``0``: any free port). Unset: no endpoint.
    prometheus_port: int | None = None
    prometheus_host: str = "127.0.0.1"
    #: Fraction of new traces sampled, in [0, 1]; a caller's sampled flag is always honoured.
    sample_ratio: float = 1.0


_OTLP_PROTOCOLS = ("grpc", "http")


def parse_telemetry(r: Reader, data: dict[str, Any]) -> TelemetryConfig:
    d = TelemetryConfig()
    r.only("telemetry", data, TelemetryConfig.__dataclass_fields__)
    headers = r.table(data, "otlp_headers", "telemetry.otlp_headers")
    for key, value in headers.items():
        if not isinstance(value, str):
            raise r.fail(f"telemetry.otlp_headers.{key}", "a string", value)
    port = data.get("prometheus_port")
    if port is not None:
        port = r.integer(data, "prometheus_port", "telemetry")
        if port > 65535:
            raise r.fail("telemetry.prometheus_port", "a port number in [0, 65535]", port)
    return TelemetryConfig(
        service_name=r.string(data, "service_name", "telemetry", d.service_name),
        capture_content=r.boolean(data, "capture_content", "telemetry", d.capture_content),
        otlp_endpoint=r.optional_string(data, "otlp_endpoint", "telemetry"),
        otlp_protocol=r.choice(
            data, "otlp_protocol", "telemetry", d.otlp_protocol, _OTLP_PROTOCOLS
        ),
        otlp_headers=dict(headers),
        export_traces=r.boolean(data, "export_traces", "telemetry", d.export_traces),
        export_metrics=r.boolean(data, "export_metrics", "telemetry", d.export_metrics),
        metric_export_interval_s=r.number(
            data, "metric_export_interval_s", "telemetry", d.metric_export_interval_s, low=0.001
        ),
        prometheus_port=port,
        prometheus_host=r.string(data, "prometheus_host", "telemetry", d.prometheus_host),
        sample_ratio=r.number(data, "sample_ratio", "telemetry", d.sample_ratio, high=1.0),
    )
