"""The ``[telemetry]`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from .fields import TABLE, Flag, Fraction, Number, Port, Text

__all__ = ["TelemetryConfig"]


@dataclass(frozen=True, slots=True, config=TABLE)
class TelemetryConfig:
    """The ``[telemetry]`` table. Standard ``OTEL_*`` variables override it (docs/telemetry.md)."""

    service_name: Text = Field(
        default="modelrouter", description="`service.name` of every span and metric."
    )
    capture_content: Flag = Field(
        default=False,
        description="Record prompt and completion text on spans (off: text never leaves).",
    )
    otlp_endpoint: Text | None = Field(
        default=None,
        description="OTLP collector, e.g. `http://collector:4317`; unset: no OTLP export.",
    )
    otlp_protocol: Literal["grpc", "http"] = Field(
        default="grpc", description="`grpc` (OTLP/gRPC) or `http` (OTLP/HTTP with protobuf bodies)."
    )
    otlp_headers: Mapping[str, Text] = Field(
        default_factory=dict, description="Extra headers sent with every export."
    )
    export_traces: Flag = Field(
        default=True, description="Export traces over OTLP when an endpoint is set."
    )
    export_metrics: Flag = Field(
        default=True, description="Export metrics over OTLP when an endpoint is set."
    )
    metric_export_interval_s: Number = Field(
        default=60.0, ge=0.001, description="Seconds between metric exports over OTLP."
    )
    prometheus_port: Port | None = Field(
        default=None,
        description="Serve Prometheus metrics on this port (0: any free port); unset: off.",
    )
    prometheus_host: Text = Field(
        default="127.0.0.1", description="Address the Prometheus endpoint binds."
    )
    sample_ratio: Fraction = Field(default=1.0, description="Fraction of new traces sampled.")
    trust_caller_sampling: Flag = Field(
        default=False,
        description="Let a caller's `traceparent` force sampling (off: `sample_ratio` decides).",
    )
