"""Translation between protobuf messages and domain types, with structural validation.

Structural checks (required fields, ranges, enum values) happen here; checks that need
the catalog or the plugins (unknown model, classifier or provider names) happen in the
router. Both raise ``InvalidRequest`` listing every bad field at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from .base import Usage
from .config import ModelSpec
from .errors import FieldViolation, InvalidRequest
from .execution.results import AttemptRecord, ExecutionSummary
from .plugins import PluginInfo
from .selection import Candidate
from .state.budgets import WindowUsage
from .telemetry.stats import StatsSnapshot
from .types import Classification, Constraints, Message, Role, RoutingRequest
from .v1 import router_pb2 as pb

_ROLES = {pb.ROLE_SYSTEM: Role.SYSTEM, pb.ROLE_USER: Role.USER, pb.ROLE_ASSISTANT: Role.ASSISTANT}
_ROLE_CHOICES = "ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT"
MAX_OUTPUT_TOKENS_LIMIT = 1_000_000


def routing_request(
    messages: Sequence[pb.Message],
    constraints: pb.Constraints,
    *,
    model: str = "",
    tenant: str = "default",
) -> RoutingRequest:
    violations: list[FieldViolation] = []
    domain_messages = _messages(messages, violations)
    domain_constraints = _constraints(constraints, violations)
    if violations:
        raise InvalidRequest(violations)
    return RoutingRequest(
        messages=domain_messages,
        constraints=domain_constraints,
        tenant=tenant,
        model=model or None,
    )


def _messages(
    messages: Sequence[pb.Message], violations: list[FieldViolation]
) -> tuple[Message, ...]:
    if not messages:
        violations.append(
            FieldViolation("messages", "at least one message is required; the last from ROLE_USER")
        )
        return ()
    result = []
    for i, message in enumerate(messages):
        role = _ROLES.get(message.role)
        if role is None:
            name = pb.Role.Name(message.role) if message.role in pb.Role.values() else message.role
            violations.append(
                FieldViolation(f"messages[{i}].role", f"got {name}; valid: {_ROLE_CHOICES}")
            )
            continue
        result.append(Message(role, message.content))
    last = messages[-1]
    if last.role != pb.ROLE_USER:
        violations.append(
            FieldViolation(
                f"messages[{len(messages) - 1}].role", "the last message must be ROLE_USER"
            )
        )
    elif not last.content.strip():
        violations.append(
            FieldViolation(
                f"messages[{len(messages) - 1}].content", "the last user message is empty"
            )
        )
    return tuple(result)


# Constraints are frozen, so every request that sets none can share one instance.
_NO_CONSTRAINTS = Constraints()


def _constraints(c: pb.Constraints, violations: list[FieldViolation]) -> Constraints:
    if not c.ListFields():
        return _NO_CONSTRAINTS

    def number(
        field: str, low: float, high: float = math.inf, *, low_open: bool = False
    ) -> float | None:
        if not c.HasField(field):
            return None
        value: float = getattr(c, field)
        too_low = value <= low if low_open else value < low
        if math.isnan(value) or too_low or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            expected = f"in [{low:g}, {high:g}]" if high != math.inf else bound
            violations.append(
                FieldViolation(f"constraints.{field}", f"must be {expected}, got {value:g}")
            )
            return None
        return value

    max_output_tokens = None
    if c.HasField("max_output_tokens"):
        if not 1 <= c.max_output_tokens <= MAX_OUTPUT_TOKENS_LIMIT:
            violations.append(
                FieldViolation(
                    "constraints.max_output_tokens",
                    f"must be in [1, {MAX_OUTPUT_TOKENS_LIMIT}], got {c.max_output_tokens}",
                )
            )
        else:
            max_output_tokens = c.max_output_tokens
    classifier = c.classifier if c.HasField("classifier") else None
    return Constraints(
        max_cost_usd=number("max_cost_usd", 0.0),
        max_latency_ms=number("max_latency_ms", 0.0, low_open=True),
        min_quality=number("min_quality", 0.0, 1.0),
        allowed_providers=tuple(c.allowed_providers),
        excluded_models=tuple(c.excluded_models),
        required_capabilities=tuple(c.required_capabilities),
        classifier=classifier,
        max_output_tokens=max_output_tokens,
        willingness_to_pay=number("willingness_to_pay", 0.0),
    )


def classification_message(classification: Classification) -> pb.ClassifyResponse:
    return pb.ClassifyResponse(
        # Domain enums share the proto numbers (see types.py); the casts only tell mypy.
        complexity=cast(pb.Complexity, classification.complexity.value),
        task_type=cast(pb.TaskType, classification.task_type.value),
        score=classification.score,
        confidence=classification.confidence,
        classifier=classification.classifier,
        features=dict(classification.features),
    )


def candidate_message(candidate: Candidate) -> pb.Candidate:
    return pb.Candidate(
        model=candidate.model.name,
        provider=candidate.model.provider,
        estimated_cost_usd=candidate.estimated_cost_usd,
        estimated_latency_ms=candidate.estimated_latency_ms,
        quality=candidate.quality,
    )


def model_message(model: ModelSpec, unavailable_reason: str | None) -> pb.Model:
    return pb.Model(
        name=model.name,
        provider=model.provider,
        upstream_model=model.upstream_model,
        input_price_usd_per_mtok=model.input_price_usd_per_mtok,
        output_price_usd_per_mtok=model.output_price_usd_per_mtok,
        context_window_tokens=model.context_window_tokens,
        typical_latency_ms=model.typical_latency_ms,
        quality=model.quality,
        quality_by_task={task.name.lower(): q for task, q in model.quality_by_task.items()},
        capabilities=sorted(model.capabilities),
        max_complexity=cast(pb.Complexity, model.max_complexity.value),
        available=unavailable_reason is None,
        unavailable_reason=unavailable_reason or "",
    )


def plugin_message(info: PluginInfo) -> pb.Plugin:
    return pb.Plugin(
        name=info.name,
        version=info.version,
        distribution=info.distribution,
        hooks=info.hooks,
        registered=info.registered,
        load_error=info.load_error,
    )


def temperature(request: pb.ExecuteRequest) -> float | None:
    """``ExecuteRequest.temperature``, validated to [0, 2]; ``None`` when unset."""
    if not request.HasField("temperature"):
        return None
    value = request.temperature
    if math.isnan(value) or not 0.0 <= value <= 2.0:
        raise InvalidRequest.single("temperature", f"must be in [0, 2], got {value:g}")
    return value


def _usage_message(usage: Usage | None) -> pb.TokenUsage:
    if usage is None:
        return pb.TokenUsage()
    return pb.TokenUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)


def attempt_message(record: AttemptRecord) -> pb.Attempt:
    return pb.Attempt(
        model=record.model,
        provider=record.provider,
        outcome=record.outcome,
        error_type=record.error_type,
        latency_ms=record.latency_ms,
        usage=_usage_message(record.usage),
        cost_usd=record.cost_usd,
        error_message=record.error_message,
    )


def execute_response(summary: ExecutionSummary) -> pb.ExecuteResponse:
    return pb.ExecuteResponse(
        text=summary.text,
        model=summary.model,
        provider=summary.provider,
        usage=_usage_message(summary.usage),
        cost_usd=summary.cost_usd,
        latency_ms=summary.latency_ms,
        decision_id=summary.decision.decision_id,
        classification=classification_message(summary.decision.classification),
        attempts=[attempt_message(r) for r in summary.attempts],
        finish_reason=summary.finish_reason,
    )


def execute_failure(summary: ExecutionSummary) -> pb.ExecuteFailure:
    return pb.ExecuteFailure(
        decision_id=summary.decision.decision_id,
        attempts=[attempt_message(r) for r in summary.attempts],
        usage=_usage_message(summary.usage),
        cost_usd=summary.cost_usd,
        stream_started=summary.stream_started,
        usage_estimated=summary.usage_estimated,
    )


def stats_message(snapshot: StatsSnapshot) -> pb.GetStatsResponse:
    """GetStats from the in-process aggregates (see ``modelrouter.telemetry.stats``)."""
    import datetime

    def rate(succeeded: int, requests: int) -> float:
        return succeeded / requests if requests else 0.0

    started = datetime.datetime.fromtimestamp(snapshot.started_at, datetime.UTC)
    return pb.GetStatsResponse(
        started_at=started.isoformat(),
        uptime_s=snapshot.uptime_s,
        requests=snapshot.requests,
        succeeded=snapshot.succeeded,
        success_rate=rate(snapshot.succeeded, snapshot.requests),
        methods=[
            pb.MethodStats(
                method=m.method,
                requests=m.requests,
                succeeded=m.succeeded,
                client_errors=m.client_errors,
                server_errors=m.server_errors,
                success_rate=rate(m.succeeded, m.requests),
                latency_p50_ms=m.latency.percentile(0.5),
                latency_p90_ms=m.latency.percentile(0.9),
                latency_p99_ms=m.latency.percentile(0.99),
                latency_mean_ms=m.latency.total_ms / m.latency.count if m.latency.count else 0.0,
            )
            for m in snapshot.methods
        ],
        decisions=snapshot.decisions,
        executions=snapshot.executions,
        cost_usd=snapshot.cost_usd,
        estimated_cost_usd=snapshot.estimated_cost_usd,
        strongest_estimated_cost_usd=snapshot.strongest_estimated_cost_usd,
        estimated_saving_usd=snapshot.estimated_saving_usd,
        fallbacks=snapshot.fallbacks,
        retries=snapshot.retries,
        models=[
            pb.ModelStats(
                model=m.model,
                selected=m.selected,
                answered=m.answered,
                cost_usd=m.cost_usd,
                input_tokens=m.input_tokens,
                output_tokens=m.output_tokens,
            )
            for m in snapshot.models
        ],
    )


def usage_message(tenant: str, usage: Sequence[WindowUsage]) -> pb.GetUsageResponse:
    return pb.GetUsageResponse(
        tenant=tenant,
        windows=[
            pb.WindowUsage(
                window=u.window,
                limit_usd=u.limit_usd,
                spent_usd=u.spent_usd,
                reserved_usd=u.reserved_usd,
                remaining_usd=u.remaining_usd,
                resets_at=u.resets_at.isoformat(),
            )
            for u in usage
        ],
    )
