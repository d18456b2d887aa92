"""Domain results to protobuf responses: decisions, answers, attempts, models, stats."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import cast

from ..base import ToolCallDelta, Usage
from ..config import ModelSpec
from ..decision import AttemptRecord, Candidate, ExecutionSummary
from ..plugins import PluginInfo
from ..shadow import ShadowStats
from ..state.budgets import WindowUsage
from ..telemetry.stats import StatsSnapshot
from ..types import (
    Classification,
    ToolCall,
)
from ..v1 import router_pb2 as pb


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


def candidate_message(candidate: Candidate, not_executable_reason: str = "") -> pb.Candidate:
    """``not_executable_reason``: why this server cannot call the model (empty: it can)."""
    return pb.Candidate(
        model=candidate.model.name,
        provider=candidate.model.provider,
        estimated_cost_usd=candidate.estimated_cost_usd,
        estimated_latency_ms=candidate.estimated_latency_ms,
        quality=candidate.quality,
        executable=not not_executable_reason,
        not_executable_reason=not_executable_reason,
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


def tool_call_messages(tool_calls: Sequence[ToolCall]) -> list[pb.ToolCall]:
    return [pb.ToolCall(id=c.id, name=c.name, arguments_json=c.arguments_json) for c in tool_calls]


def tool_call_delta_message(delta: ToolCallDelta) -> pb.ExecuteStreamResponse:
    """The ExecuteStream message for one streamed piece of a tool call."""
    return pb.ExecuteStreamResponse(
        tool_call_delta=pb.ToolCallDelta(
            index=delta.index,
            id=delta.id or "",
            name=delta.name or "",
            arguments_fragment=delta.arguments,
        )
    )


def stream_message(event: str | ToolCallDelta | ExecutionSummary) -> pb.ExecuteStreamResponse:
    """The ExecuteStream message for one event of the pipeline's stream."""
    if isinstance(event, str):
        return pb.ExecuteStreamResponse(delta=event)
    if isinstance(event, ToolCallDelta):
        return tool_call_delta_message(event)
    return pb.ExecuteStreamResponse(summary=execute_response(event))


def execute_response(summary: ExecutionSummary) -> pb.ExecuteResponse:
    """Execute's answer (and ExecuteStream's final summary), with the complete tool calls."""
    return pb.ExecuteResponse(
        tool_calls=tool_call_messages(summary.tool_calls),
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


def stats_message(
    snapshot: StatsSnapshot, shadow: ShadowStats | None = None, tenant: str | None = None
) -> pb.GetStatsResponse:
    """GetStats from the in-process aggregates (see ``modelrouter.telemetry.stats``), with
    ``shadow``'s live quality figures (of ``tenant``, else every tenant's)."""
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
        shadow=[
            pb.ShadowQuality(**dataclasses.asdict(q))
            for q in (shadow.snapshot(tenant) if shadow else ())
        ],
        shadow_cost_usd=shadow.cost_usd(tenant) if shadow else 0.0,
        shadow_skipped=shadow.skipped(tenant) if shadow else {},
    )


def usage_message(
    tenant: str, usage: Sequence[WindowUsage], shadow: Sequence[WindowUsage] = ()
) -> pb.GetUsageResponse:
    return pb.GetUsageResponse(
        tenant=tenant,
        windows=[_window_message(u) for u in usage],
        shadow_windows=[_window_message(u) for u in shadow],
    )


def _window_message(u: WindowUsage) -> pb.WindowUsage:
    return pb.WindowUsage(
        window=u.window,
        limit_usd=u.limit_usd,
        spent_usd=u.spent_usd,
        reserved_usd=u.reserved_usd,
        remaining_usd=u.remaining_usd,
        resets_at=u.resets_at.isoformat(),
    )
