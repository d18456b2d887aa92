"""Telemetry: traces, metrics and in-process stats (see docs/telemetry.md).

``Telemetry`` is built from injected tracer and meter providers; ``build_providers``
makes providers with exporters from ``[telemetry]`` and the ``OTEL_*`` variables.
``rpc`` opens the SERVER span of a call, ``describe`` says what a decision looks like on a
span, ``attempts`` writes the provider calls' spans and metrics.
"""

from __future__ import annotations

from .service import Telemetry
from .setup import Providers, ResolvedTelemetry, build_providers, resolve
from .stats import Stats, StatsSnapshot

__all__ = [
    "Providers",
    "ResolvedTelemetry",
    "Stats",
    "StatsSnapshot",
    "Telemetry",
    "build_providers",
    "resolve",
]
