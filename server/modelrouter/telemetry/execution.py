"""CLIENT spans and GenAI metrics for provider calls, as an execution listener.

One span ``chat {model}`` (kind CLIENT) per attempt, child of the call's SERVER span,
with the GenAI conventions' attributes; the outcome of the whole execution (actual cost,
attempts, which fallback answered) goes on the SERVER span.
"""

from __future__ import annotations

import contextvars
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode

from ..execution.listeners import AttemptInfo, ExecutionListener
from ..execution.results import CANCELLED, OK, AttemptRecord, ExecutionSummary
from . import attributes as a
from .tracing import Telemetry, current_scope, messages_json

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..execution.circuit import CircuitBreaker
    from ..router import Decision
    from ..types import RoutingRequest


@dataclass(slots=True)
class _Run:
    positions: dict[str, int]
    last_position: int = -1


_run: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("modelrouter_run", default=None)


class TelemetryListener(ExecutionListener):
    """Traces and measures every attempt; feeds cost, fallbacks and retries to the stats."""

    def __init__(
        self, telemetry: Telemetry, catalog: Catalog, breaker: CircuitBreaker | None = None
    ) -> None:
        self.telemetry = telemetry
        self.catalog = catalog
        self.breaker = breaker
        self._addresses: dict[str, tuple[str, int | None] | None] = {}

    async def execution_started(self, request: RoutingRequest, decision: Decision) -> None:
        # Execute may have replaced the router's choice (an explicit model): record the final one.
        self.telemetry.record_decision(request, decision)
        positions = {c.model.name: i for i, c in enumerate(decision.selection.candidates)}
        _run.set(_Run(positions))

    def attempt_started(self, attempt: AttemptInfo) -> None:
        run = _run.get()
        position = run.positions.get(attempt.model.name, -1) if run else -1
        model = attempt.call.model
        attributes: dict[str, Any] = {
            a.GEN_AI_OPERATION_NAME: a.OPERATION_CHAT,
            a.GEN_AI_PROVIDER_NAME: attempt.provider_kind or attempt.provider,
            a.GEN_AI_REQUEST_MODEL: model,
            a.GEN_AI_REQUEST_MAX_TOKENS: attempt.call.max_output_tokens,
            a.GEN_AI_REQUEST_STREAM: attempt.streaming,
            a.MODEL: attempt.model.name,
            a.FALLBACK_POSITION: position,
            a.RETRY: attempt.retry,
        }
        if attempt.call.temperature is not None:
            attributes[a.GEN_AI_REQUEST_TEMPERATURE] = attempt.call.temperature
        address = self._address(attempt.provider)
        if address is not None:
            attributes[a.SERVER_ADDRESS] = address[0]
            if address[1] is not None:
                attributes[a.SERVER_PORT] = address[1]
        if self.telemetry.capture_content:
            attributes[a.GEN_AI_INPUT_MESSAGES] = messages_json(attempt.call.messages)
        span = self.telemetry.tracer.start_span(
            f"{a.OPERATION_CHAT} {model}", kind=SpanKind.CLIENT, attributes=attributes
        )
        was_open = (
            self.breaker is not None and self.breaker.open_reason(attempt.model.name) is not None
        )
        fallback = position > 0 and attempt.retry == 0
        if run is not None:
            fallback = fallback and position != run.last_position
            run.last_position = position
        attempt.scratch["telemetry"] = (span, time.perf_counter(), was_open, fallback)

    def attempt_finished(self, attempt: AttemptInfo, record: AttemptRecord) -> None:
        state = attempt.scratch.pop("telemetry", None)
        if state is None:
            return
        span, started, was_open, fallback = state
        elapsed = time.perf_counter() - started
        metrics = self.telemetry.metrics
        model = attempt.call.model
        point: dict[str, Any] = {
            a.GEN_AI_OPERATION_NAME: a.OPERATION_CHAT,
            a.GEN_AI_PROVIDER_NAME: attempt.provider_kind or attempt.provider,
            a.GEN_AI_REQUEST_MODEL: model,
        }
        address = self._address(attempt.provider)
        if address is not None:
            point[a.SERVER_ADDRESS] = address[0]
        span.set_attribute(a.OUTCOME, record.outcome)
        span.set_attribute(a.COST_USD, record.cost_usd)
        if record.outcome == OK:
            point[a.GEN_AI_RESPONSE_MODEL] = model
            span.set_attribute(a.GEN_AI_RESPONSE_MODEL, model)
        else:
            point[a.ERROR_TYPE] = record.error_type or "error"
            span.set_attribute(a.ERROR_TYPE, point[a.ERROR_TYPE])
            if record.outcome != CANCELLED:
                span.set_status(Status(StatusCode.ERROR, point[a.ERROR_TYPE]))
        usage = record.usage
        if usage is not None:
            span.set_attribute(a.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
            span.set_attribute(a.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
            metrics.token_usage.record(usage.input_tokens, {**point, a.GEN_AI_TOKEN_TYPE: "input"})
            metrics.token_usage.record(
                usage.output_tokens, {**point, a.GEN_AI_TOKEN_TYPE: "output"}
            )
        span.end()
        metrics.operation_duration.record(elapsed, point)
        by_model = {
            a.MODEL: attempt.model.name,
            a.GEN_AI_PROVIDER_NAME: point[a.GEN_AI_PROVIDER_NAME],
        }
        if record.cost_usd:
            metrics.cost.add(record.cost_usd, by_model)
        if fallback:
            metrics.fallbacks.add(1, by_model)
        if attempt.retry:
            metrics.retries.add(1, by_model)
        if (
            record.outcome != OK
            and self.breaker is not None
            and not was_open
            and self.breaker.open_reason(attempt.model.name) is not None
        ):
            metrics.circuit_openings.add(1, by_model)
        self.telemetry.stats.record_attempt(
            attempt.model.name,
            record.cost_usd,
            usage.input_tokens if usage else 0,
            usage.output_tokens if usage else 0,
            fallback=fallback,
            retry=attempt.retry > 0,
            tenant=scope.tenant if (scope := current_scope()) else "default",
        )

    async def execution_finished(
        self,
        request: RoutingRequest,
        decision: Decision,
        summary: ExecutionSummary | None,
        error: BaseException | None,
    ) -> None:
        run = _run.get()
        _run.set(None)
        self.telemetry.stats.record_execution(summary.model if summary else "", request.tenant)
        scope = current_scope()
        if scope is None or summary is None:
            return
        attributes: dict[str, Any] = {
            a.ATTEMPTS: len(summary.attempts),
            a.COST_USD: summary.cost_usd,
        }
        if summary.model:
            attributes[a.RESPONSE_MODEL] = summary.model
            if run is not None:
                attributes[a.FALLBACK_POSITION] = run.positions.get(summary.model, -1)
        if summary.stream_started:
            attributes[a.STREAM_STARTED] = True
        if self.telemetry.capture_content and summary.text:
            attributes[a.GEN_AI_OUTPUT_MESSAGES] = json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": summary.text}],
                        "finish_reason": summary.finish_reason,
                    }
                ]
            )
        scope.span.set_attributes(attributes)

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
