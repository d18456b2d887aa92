"""The telemetry service: tracer, instruments, stats and the content-capture switch.

Built once by ``create_server`` from injected tracer and meter providers (no-op ones when
none are given); it never touches global OpenTelemetry state, so tests can give each
server its own in-memory exporters. Everything that records passes spans explicitly:
a child span names its parent, so no stage has to rely on what happens to be current.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, NoOpMeter, NoOpMeterProvider
from opentelemetry.trace import INVALID_SPAN, NoOpTracer, NoOpTracerProvider, Span, TracerProvider

from .describe import mark_error
from .metrics import RouterMetrics
from .stats import Stats

INSTRUMENTATION_NAME = "modelrouter"


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
        self.meter = meter
        self.metrics = RouterMetrics(meter)
        #: False with the no-op meter (telemetry off): no point is ever exported, so calls
        #: skip building attribute sets and recording them.
        self.metering = not isinstance(meter, NoOpMeter)
        self.capture_content = capture_content
        self.stats = stats or Stats()
        #: False with the no-op tracer (telemetry off): no span is ever recorded, so calls
        #: skip starting spans, which is most of their tracing cost.
        self.tracing = not isinstance(self.tracer, NoOpTracer)

    @contextlib.contextmanager
    def child_span(self, name: str, parent: Span) -> Iterator[Span]:
        """A span under ``parent`` for the duration of the block; an exception marks it.

        Under a parent that was sampled out, the parent itself stands in for the child:
        with parent-based sampling (what ``[telemetry]`` builds) the child would be sampled
        out too, and it would carry the same trace id and flags; skipping it saves the
        sampler, a span object and a context per stage of every unsampled request.
        """
        if not self.tracing:
            yield INVALID_SPAN
            return
        if not parent.is_recording() and not parent.get_span_context().trace_flags.sampled:
            yield parent
            return
        span = self.tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            record_exception=False,
            set_status_on_exception=False,
        )
        try:
            yield span
        except Exception as exc:
            mark_error(span, exc)
            raise
        finally:
            span.end()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("modelrouter")
    except metadata.PackageNotFoundError:
        return "0+unknown"
