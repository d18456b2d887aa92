"""CLIENT spans, GenAI metrics and stats of the provider calls one execution made.

Written by the record stage after execution, from the :class:`AttemptRecord` values the
attempt loop produced: one span ``chat {model}`` (kind CLIENT) per attempt, child of the
call's SERVER span and placed at the attempt's real start and end times, with the GenAI
conventions' attributes. The attempt loop itself records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ..decision import CANCELLED, OK, AttemptRecord, ExecutionSummary
from . import attributes as a
from .describe import messages_json
from .service import Telemetry

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..types import RoutingRequest


class AttemptTelemetry:
    """Describes provider attempts; knows each provider's kind and server address."""

    def __init__(self, telemetry: Telemetry, catalog: Catalog) -> None:
        self.telemetry = telemetry
        self.catalog = catalog
        self._addresses: dict[str, tuple[str, int | None] | None] = {}

    def record(
        self,
        parent: Span,
        request: RoutingRequest,
        summary: ExecutionSummary,
        *,
        streaming: bool,
        temperature: float | None,
    ) -> None:
        positions = {c.model.name: i for i, c in enumerate(summary.decision.selection.candidates)}
        last_position = -1
        for record in summary.attempts:
            position = positions.get(record.model, -1)
            fallback = position > 0 and record.retry == 0 and position != last_position
            last_position = position
            self._record_one(
                parent, request, summary, record, position, fallback, streaming, temperature
            )

    def _record_one(
        self,
        parent: Span,
        request: RoutingRequest,
        summary: ExecutionSummary,
        record: AttemptRecord,
        position: int,
        fallback: bool,
        streaming: bool,
        temperature: float | None,
    ) -> None:
        telemetry = self.telemetry
        spec = self.catalog.models.get(record.model)
        upstream_model = spec.upstream_model if spec is not None else record.model
        provider = self.catalog.providers.get(record.provider)
        provider_name = (provider.kind if provider is not None else "") or record.provider
        address = self._address(record.provider)
        point: dict[str, Any] = {
            a.GEN_AI_OPERATION_NAME: a.OPERATION_CHAT,
            a.GEN_AI_PROVIDER_NAME: provider_name,
            a.GEN_AI_REQUEST_MODEL: upstream_model,
        }
        if address is not None:
            point[a.SERVER_ADDRESS] = address[0]
        if record.outcome == OK:
            point[a.GEN_AI_RESPONSE_MODEL] = upstream_model
        else:
            point[a.ERROR_TYPE] = record.error_type or "error"
        usage = record.usage
        if telemetry.tracing:
            attributes: dict[str, Any] = {
                **point,
                a.GEN_AI_REQUEST_MAX_TOKENS: summary.decision.selection.max_output_tokens,
                a.GEN_AI_REQUEST_STREAM: streaming,
                a.MODEL: record.model,
                a.FALLBACK_POSITION: position,
                a.RETRY: record.retry,
                a.OUTCOME: record.outcome,
                a.COST_USD: record.cost_usd,
            }
            if address is not None and address[1] is not None:
                attributes[a.SERVER_PORT] = address[1]
            if temperature is not None:
                attributes[a.GEN_AI_REQUEST_TEMPERATURE] = temperature
            attributes.update(self._option_attributes(request))
            if usage is not None:
                attributes[a.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
                attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if telemetry.capture_content:
                attributes[a.GEN_AI_INPUT_MESSAGES] = messages_json(request.messages)
            span = telemetry.tracer.start_span(
                f"{a.OPERATION_CHAT} {upstream_model}",
                context=trace.set_span_in_context(parent),
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=record.started_ns or None,
            )
            if record.outcome not in (OK, CANCELLED):
                span.set_status(Status(StatusCode.ERROR, point[a.ERROR_TYPE]))
            end = record.started_ns + int(record.latency_ms * 1e6) if record.started_ns else None
            span.end(end_time=end)
        by_model = {a.MODEL: record.model, a.GEN_AI_PROVIDER_NAME: provider_name}
        if telemetry.metering:
            self._measure(point, by_model, record, fallback)
        telemetry.stats.record_attempt(
            record.model,
            record.cost_usd,
            usage.input_tokens if usage else 0,
            usage.output_tokens if usage else 0,
            fallback=fallback,
            retry=record.retry > 0,
            tenant=request.tenant,
        )

    def _option_attributes(self, request: RoutingRequest) -> dict[str, Any]:
        """The GenAI request attributes of the request's options. Tool names and schemas
        are content: recorded only when the operator opted in."""
        options = request.options
        attributes: dict[str, Any] = {
            a.GEN_AI_OUTPUT_TYPE: "json" if options.response_format is not None else "text"
        }
        if options.top_p is not None:
            attributes[a.GEN_AI_REQUEST_TOP_P] = options.top_p
        if options.seed is not None:
            attributes[a.GEN_AI_REQUEST_SEED] = options.seed
        if options.stop and self.telemetry.capture_content:
            attributes[a.GEN_AI_REQUEST_STOP_SEQUENCES] = list(options.stop)
        if options.tools:
            attributes[a.TOOL_COUNT] = len(options.tools)
            if self.telemetry.capture_content:
                attributes[a.GEN_AI_TOOL_DEFINITIONS] = json.dumps(
                    [
                        {"type": "function", "name": t.name, "parameters": dict(t.parameters)}
                        for t in options.tools
                    ]
                )
        return attributes

    def _measure(
        self,
        point: Mapping[str, Any],
        by_model: Mapping[str, Any],
        record: AttemptRecord,
        fallback: bool,
    ) -> None:
        metrics = self.telemetry.metrics
        if record.usage is not None:
            metrics.token_usage.record(
                record.usage.input_tokens, {**point, a.GEN_AI_TOKEN_TYPE: "input"}
            )
            metrics.token_usage.record(
                record.usage.output_tokens, {**point, a.GEN_AI_TOKEN_TYPE: "output"}
            )
        metrics.operation_duration.record(record.latency_ms / 1000.0, point)
        if record.cost_usd:
            metrics.cost.add(record.cost_usd, by_model)
        if fallback:
            metrics.fallbacks.add(1, by_model)
        if record.retry:
            metrics.retries.add(1, by_model)
        if record.opened_circuit:
            metrics.circuit_openings.add(1, by_model)

    def _address(self, provider: str) -> tuple[str, int | None] | None:
        if provider not in self._addresses:
            instance = self.catalog.providers.get(provider)
            base_url = instance.settings.base_url if instance is not None else None
            address = None
            if base_url:
                parts = urlsplit(base_url)
                if parts.hostname:
                    address = (parts.hostname, parts.port)
            self._addresses[provider] = address
        return self._addresses[provider]
