"""Telemetry: traces, metrics and in-process stats (see docs/telemetry.md).

``Telemetry`` is built from injected tracer and meter providers; ``build_providers``
makes providers with exporters from ``[telemetry]`` and the ``OTEL_*`` variables.
"""

from __future__ import annotations

from .setup import Providers, ResolvedTelemetry, build_providers, resolve
from .stats import Stats, StatsSnapshot
from .tracing import Telemetry, TelemetryInterceptor, current_scope

__all__ = [
    "Providers",
    "ResolvedTelemetry",
    "Stats",
    "StatsSnapshot",
    "Telemetry",
    "TelemetryInterceptor",
    "build_providers",
    "current_scope",
    "resolve",
]
