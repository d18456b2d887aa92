"""The one place that turns domain errors into gRPC statuses with google.rpc details.

Client mistakes get client codes and details that say what to fix; anything unexpected
is logged with its traceback and reaches the caller only as INTERNAL with an opaque
message, never a stack trace.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message as ProtoMessage
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from . import convert
from .errors import (
    BudgetExhausted,
    ConfigError,
    ExecutionDeadlineExceeded,
    ExecutionFailed,
    InFlightLimitExceeded,
    InvalidRequest,
    ModelUnavailable,
    NoEligibleModel,
    NotFound,
    QuotaExceeded,
    RateLimited,
    RouterError,
    StorageUnavailable,
    StreamStalled,
    Unauthenticated,
)

ERROR_DOMAIN = "modelrouter.dev"
log = logging.getLogger(__name__)


def to_status(error: Exception) -> status_pb2.Status:
    """Build the google.rpc.Status for ``error``."""
    if isinstance(error, InvalidRequest):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        fields = ",".join(dict.fromkeys(v.field for v in error.violations))
        return _status(
            code_pb2.INVALID_ARGUMENT,
            str(error),
            "INVALID_REQUEST",
            bad_request,
            metadata={"fields": fields[:1024]},
        )
    if isinstance(error, NotFound):
        info = error_details_pb2.ResourceInfo(
            resource_type=error.kind, resource_name=error.name, description=str(error)
        )
        return _status(code_pb2.NOT_FOUND, str(error), f"{error.kind.upper()}_NOT_FOUND", info)
    if isinstance(error, NoEligibleModel):
        # One violation per model the emptying rule removed, naming what that model lacks,
        # so a caller sees at once which model would need what.
        violations = [
            error_details_pb2.PreconditionFailure.Violation(
                type="NO_ELIGIBLE_MODEL", subject=error.constraint, description=str(error)
            )
        ]
        violations += [
            error_details_pb2.PreconditionFailure.Violation(
                type="MODEL_EXCLUDED", subject=f"model:{model}", description=why
            )
            for model, why in error.models
        ]
        failure = error_details_pb2.PreconditionFailure(violations=violations)
        return _status(
            code_pb2.FAILED_PRECONDITION,
            str(error),
            "NO_ELIGIBLE_MODEL",
            failure,
            metadata={"constraint": error.constraint},
        )
    if isinstance(error, ModelUnavailable):
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="MODEL_UNAVAILABLE", subject=error.model, description=str(error)
                )
            ]
        )
        return _status(code_pb2.FAILED_PRECONDITION, str(error), "MODEL_UNAVAILABLE", failure)
    if isinstance(error, BudgetExhausted):
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=f"tenant:{error.tenant}/budget:{error.window}", description=str(error)
                )
            ]
        )
        # Each limit has its reason; all say when trying again can help.
        if isinstance(error, InFlightLimitExceeded):
            reason = "IN_FLIGHT_LIMIT"
        elif isinstance(error, QuotaExceeded):
            reason = "FEEDBACK_QUOTA"
        else:
            reason = "BUDGET_EXHAUSTED"
        wait_s = getattr(error, "retry_after_s", None)
        if wait_s is None:
            wait_s = (error.resets_at - datetime.now(UTC)).total_seconds()
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(max(int(wait_s * 1000), 1))
        return _status(
            code_pb2.RESOURCE_EXHAUSTED,
            str(error),
            reason,
            quota,
            retry,
            metadata={"window": error.window, "resets_at": error.resets_at.isoformat()},
        )
    if isinstance(error, RateLimited):
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=f"tenant:{error.tenant}/rate", description=str(error)
                )
            ]
        )
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(max(int(error.retry_after_s * 1000), 1))
        return _status(code_pb2.RESOURCE_EXHAUSTED, str(error), "RATE_LIMITED", quota, retry)
    if isinstance(error, StreamStalled):
        return _status(code_pb2.DEADLINE_EXCEEDED, str(error), "STREAM_STALLED")
    if isinstance(error, Unauthenticated):
        return _status(code_pb2.UNAUTHENTICATED, str(error), "UNAUTHENTICATED")
    if isinstance(error, StorageUnavailable):
        return _status(code_pb2.UNAVAILABLE, str(error), "STORAGE_UNAVAILABLE")
    if isinstance(error, ConfigError):
        return _status(code_pb2.FAILED_PRECONDITION, str(error), "CONFIGURATION")
    if isinstance(error, ExecutionFailed):
        return _execution_failed(error)
    if isinstance(error, RouterError):
        return _status(code_pb2.INTERNAL, str(error), type(error).__name__.upper())
    return _status(code_pb2.INTERNAL, "internal error; see the server log", "INTERNAL")


def _execution_failed(error: ExecutionFailed) -> status_pb2.Status:
    """UNAVAILABLE (DEADLINE_EXCEEDED when time ran out) with a modelrouter.v1.ExecuteFailure
    listing every attempt, and a RetryInfo when an upstream asked callers to wait."""
    failure = convert.execute_failure(error.summary)  # type: ignore[arg-type]
    details: list[ProtoMessage] = [failure]
    if error.retry_after_s is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(int(error.retry_after_s * 1000))
        details.append(retry)
    if isinstance(error, ExecutionDeadlineExceeded):
        code, reason = code_pb2.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"
    elif failure.stream_started:
        code, reason = code_pb2.UNAVAILABLE, "STREAM_INTERRUPTED"
    else:
        code, reason = code_pb2.UNAVAILABLE, "ALL_ATTEMPTS_FAILED"
    last_error = next((a.error_type for a in reversed(failure.attempts) if a.error_type), "")
    metadata = {
        "decision_id": failure.decision_id,
        "attempts": str(len(failure.attempts)),
        "last_error_type": last_error,
    }
    return _status(code, str(error), reason, *details, metadata=metadata)


def _status(
    code: int,
    message: str,
    reason: str,
    *details: ProtoMessage,
    metadata: dict[str, str] | None = None,
) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata or {})
    packed = []
    for detail in (*details, info):
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(code=code, message=message, details=packed)


async def abort(context: grpc.aio.ServicerContext, error: Exception) -> None:
    if not isinstance(error, RouterError):
        log.error("unexpected error while serving a call", exc_info=error)
    await context.abort_with_status(rpc_status.to_status(to_status(error)))


def grpc_code(error: Exception) -> grpc.StatusCode:
    """The status code ``error`` maps to."""
    return _CODES.get(to_status(error).code, grpc.StatusCode.UNKNOWN)


_CODES = {code.value[0]: code for code in grpc.StatusCode}
