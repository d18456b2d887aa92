"""Tracer and meter providers with exporters, from ``[telemetry]`` and ``OTEL_*`` variables.

The standard variables override the file (docs/telemetry.md lists each one). Nothing here
touches OpenTelemetry's global providers: the server gets its providers injected, and
:func:`build_providers` only builds them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from ..config import TelemetryConfig
from ..config.environment import Environment
from ..errors import ConfigError
from .metrics import views

log = logging.getLogger(__name__)

_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http": "http://localhost:4318"}
_PROTOCOLS = {"grpc": "grpc", "http/protobuf": "http", "http": "http"}


@dataclass(frozen=True, slots=True)
class ResolvedTelemetry:
    """The file's settings with the environment applied: what will actually run."""

    service_name: str
    capture_content: bool
    resource_attributes: Mapping[str, str]
    traces_endpoint: str | None
    metrics_endpoint: str | None
    traces_protocol: str
    metrics_protocol: str
    headers: Mapping[str, str]
    metric_export_interval_s: float
    prometheus: tuple[str, int] | None
    sample_ratio: float
    disabled: bool = False


def resolve(config: TelemetryConfig, environ: Mapping[str, str] | None) -> ResolvedTelemetry:
    """Apply the ``OTEL_*`` variables of ``environ`` (``None``: the process's) on top of
    ``config``."""

    variables = Environment(environ)

    def env(name: str) -> str | None:
        value = (variables.get(name) or "").strip()
        return value or None

    def flag(name: str) -> bool | None:
        value = env(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise ConfigError(f"${name}: expected true or false, got {value!r}")
        return value.lower() == "true"

    protocol: str = config.otlp_protocol
    if (p := env("OTEL_EXPORTER_OTLP_PROTOCOL")) is not None:
        protocol = _protocol("OTEL_EXPORTER_OTLP_PROTOCOL", p)
    traces_protocol = _protocol(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or protocol
    )
    metrics_protocol = _protocol(
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or protocol,
    )

    endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT") or config.otlp_endpoint
    traces_exporters = _names("OTEL_TRACES_EXPORTER", env("OTEL_TRACES_EXPORTER"))
    metrics_exporters = _names("OTEL_METRICS_EXPORTER", env("OTEL_METRICS_EXPORTER"))

    def signal_endpoint(
        signal: str, enabled_in_file: bool, chosen: set[str] | None, proto: str
    ) -> str | None:
        specific = env(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        base: str | None
        if chosen is not None:  # the variable decides
            if "otlp" not in chosen:
                return None
            base = specific or endpoint or _DEFAULT_ENDPOINTS[proto]
        else:
            if specific is None and (endpoint is None or not enabled_in_file):
                return None
            base = specific or endpoint
        assert base is not None
        if specific is None and proto == "http":
            return base.rstrip("/") + f"/v1/{signal}"
        return base

    headers = dict(config.otlp_headers)
    if (h := env("OTEL_EXPORTER_OTLP_HEADERS")) is not None:
        headers.update(_pairs("OTEL_EXPORTER_OTLP_HEADERS", h))

    prometheus = None
    if config.prometheus_port is not None:
        prometheus = (config.prometheus_host, config.prometheus_port)
    if metrics_exporters is not None:
        prometheus = None
        if "prometheus" in metrics_exporters:
            host = env("OTEL_EXPORTER_PROMETHEUS_HOST") or config.prometheus_host
            port = env("OTEL_EXPORTER_PROMETHEUS_PORT")
            prometheus = (
                host,
                _int("OTEL_EXPORTER_PROMETHEUS_PORT", port)
                if port
                else (config.prometheus_port if config.prometheus_port is not None else 9464),
            )

    interval = config.metric_export_interval_s
    if (i := env("OTEL_METRIC_EXPORT_INTERVAL")) is not None:
        interval = _int("OTEL_METRIC_EXPORT_INTERVAL", i) / 1000.0

    sample_ratio = config.sample_ratio
    sampler = env("OTEL_TRACES_SAMPLER")
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        arg = env("OTEL_TRACES_SAMPLER_ARG") or "1.0"
        try:
            sample_ratio = min(max(float(arg), 0.0), 1.0)
        except ValueError:
            raise ConfigError(
                f"$OTEL_TRACES_SAMPLER_ARG: expected a number in [0, 1], got {arg!r}"
            ) from None
    elif sampler in ("always_off", "parentbased_always_off"):
        sample_ratio = 0.0
    elif sampler in ("always_on", "parentbased_always_on"):
        sample_ratio = 1.0

    capture = config.capture_content
    if (c := flag("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")) is not None:
        capture = c

    return ResolvedTelemetry(
        service_name=env("OTEL_SERVICE_NAME") or config.service_name,
        capture_content=capture,
        resource_attributes=_pairs(
            "OTEL_RESOURCE_ATTRIBUTES", env("OTEL_RESOURCE_ATTRIBUTES") or ""
        ),
        traces_endpoint=signal_endpoint(
            "traces", config.export_traces, traces_exporters, traces_protocol
        ),
        metrics_endpoint=signal_endpoint(
            "metrics", config.export_metrics, metrics_exporters, metrics_protocol
        ),
        traces_protocol=traces_protocol,
        metrics_protocol=metrics_protocol,
        headers=headers,
        metric_export_interval_s=interval,
        prometheus=prometheus,
        sample_ratio=sample_ratio,
        disabled=flag("OTEL_SDK_DISABLED") or False,
    )


@dataclass(slots=True)
class Providers:
    """Providers built for a server, and how to flush and stop them."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    settings: ResolvedTelemetry
    #: Where the Prometheus endpoint listens (port resolved when 0 was asked for).
    prometheus_address: tuple[str, int] | None = None
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Export everything recorded so far (blocks; call it off the event loop)."""
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:  # a collector that is down must not block shutdown
                log.warning("telemetry shutdown step failed", exc_info=True)
        self._closers.clear()


def _sampler(ratio: float, trust_callers: bool) -> ParentBased:
    """Parent-based sampling with a root ratio. A caller's ``traceparent`` that asks for
    sampling is trusted only when the operator says so: otherwise such a trace is sampled
    at the root ratio like any other, so that callers cannot switch on (costly) tracing.
    A caller asking for no sampling is always obeyed."""
    root = TraceIdRatioBased(ratio)
    if trust_callers:
        return ParentBased(root)
    return ParentBased(root, remote_parent_sampled=root)


def build_providers(config: TelemetryConfig, environ: Mapping[str, str] | None) -> Providers:
    """Providers exporting where ``config`` and ``environ`` say; none when nothing is asked."""
    settings = resolve(config, environ)
    if settings.disabled:
        return Providers(None, None, replace(settings, prometheus=None))
    resource = Resource.create(
        {**settings.resource_attributes, "service.name": settings.service_name}
    )
    providers = Providers(None, None, settings)
    if settings.traces_endpoint is not None:
        tracer_provider = TracerProvider(
            resource=resource, sampler=_sampler(settings.sample_ratio, config.trust_caller_sampling)
        )
        tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(settings)))
        providers.tracer_provider = tracer_provider
        providers._closers.append(tracer_provider.shutdown)
        log.info(
            "exporting traces over OTLP/%s to %s",
            settings.traces_protocol,
            settings.traces_endpoint,
        )
    readers: list[MetricReader] = []
    if settings.metrics_endpoint is not None:
        readers.append(
            PeriodicExportingMetricReader(
                _metric_exporter(settings),
                export_interval_millis=settings.metric_export_interval_s * 1000,
            )
        )
        log.info(
            "exporting metrics over OTLP/%s to %s",
            settings.metrics_protocol,
            settings.metrics_endpoint,
        )
    if settings.prometheus is not None:
        reader, address, close = _prometheus(*settings.prometheus)
        readers.append(reader)
        providers.prometheus_address = address
        providers._closers.append(close)
        log.info("serving Prometheus metrics on http://%s:%d/metrics", *address)
    if readers:
        meter_provider = MeterProvider(metric_readers=readers, resource=resource, views=views())
        providers.meter_provider = meter_provider
        # First, so the last points are exported before the HTTP endpoint closes.
        providers._closers.insert(0, meter_provider.shutdown)
    return providers


def _span_exporter(settings: ResolvedTelemetry) -> Any:
    endpoint = settings.traces_endpoint
    if settings.traces_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=endpoint, insecure=_insecure(endpoint), headers=dict(settings.headers)
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http(endpoint=endpoint, headers=dict(settings.headers))


def _metric_exporter(settings: ResolvedTelemetry) -> Any:
    endpoint = settings.metrics_endpoint
    if settings.metrics_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=endpoint, insecure=_insecure(endpoint), headers=dict(settings.headers)
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http(endpoint=endpoint, headers=dict(settings.headers))


def _prometheus(host: str, port: int) -> tuple[MetricReader, tuple[str, int], Callable[[], None]]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    # A registry of our own: two servers in one process (tests) must not collide in the
    # prometheus_client global one.
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    httpd, thread = start_http_server(port, addr=host, registry=registry)

    def close() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return reader, (host, httpd.server_port), close


def _insecure(endpoint: str | None) -> bool:
    return endpoint is None or not endpoint.startswith("https://")


def _protocol(name: str, value: str) -> str:
    try:
        return _PROTOCOLS[value]
    except KeyError:
        raise ConfigError(f"${name}: expected grpc or http/protobuf, got {value!r}") from None


def _names(name: str, value: str | None) -> set[str] | None:
    if value is None:
        return None
    names = {v.strip().lower() for v in value.split(",") if v.strip()}
    unknown = names - {"otlp", "prometheus", "none"}
    if unknown:
        raise ConfigError(f"${name}: expected otlp, prometheus or none, got {sorted(unknown)}")
    return names


def _pairs(name: str, value: str) -> dict[str, str]:
    pairs = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"${name}: expected key=value pairs separated by commas, got {item!r}"
            )
        pairs[unquote(key.strip())] = unquote(val.strip())
    return pairs


def _int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"${name}: expected an integer, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"${name}: expected an integer >= 0, got {number}")
    return number
