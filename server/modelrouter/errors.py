"""Domain errors. ``modelrouter.status`` is the one place that turns them into gRPC statuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: which field and what was expected."""

    field: str
    description: str


class InvalidRequest(RouterError):
    """The caller sent something malformed (maps to INVALID_ARGUMENT)."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidRequest:
        return cls([FieldViolation(field, description)])


class NotFound(RouterError):
    """A named resource does not exist (maps to NOT_FOUND)."""

    def __init__(self, kind: str, name: str, choices: Sequence[str] = ()) -> None:
        self.kind, self.name, self.choices = kind, name, tuple(choices)
        message = f"unknown {kind} {name!r}"
        if choices:
            message += f"; known: {', '.join(sorted(choices))}"
        super().__init__(message)


class NoEligibleModel(RouterError):
    """The request's constraints left no model to choose (maps to FAILED_PRECONDITION).

    ``constraint`` names the constraint that removed the last candidates; ``models``
    says, for the models it removed, why each one fails it (model name, what it lacks).
    """

    def __init__(
        self, constraint: str, detail: str, models: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.constraint = constraint
        self.models = tuple(models)
        super().__init__(f"no model satisfies {constraint}: {detail}")


class ModelUnavailable(RouterError):
    """An explicitly requested model cannot be used now (maps to FAILED_PRECONDITION)."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        super().__init__(f"model {model!r} is unavailable: {reason}")


class ProviderError(RouterError):
    """An upstream provider call failed.

    Provider plugins raise this (or let the router translate SDK errors into it).
    ``kind`` is a short stable class such as ``rate_limit``, ``server_error``, ``timeout``,
    ``connection``, ``bad_request``, ``auth``, ``context_length`` or ``malformed_response``.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        status_code: int | None = None,
    ) -> None:
        self.kind = kind
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status_code = status_code
        super().__init__(message)


class ConfigError(RouterError):
    """The configuration file is invalid. The message names the file, key and expectation."""


class BudgetExhausted(RouterError):
    """A tenant's budget for a window cannot cover the request (maps to RESOURCE_EXHAUSTED).

    ``window`` is ``hour``, ``day`` or ``month``; ``resets_at`` is when it next resets (UTC).
    """

    def __init__(self, tenant: str, window: str, limit_usd: float, resets_at: datetime) -> None:
        self.tenant, self.window, self.limit_usd, self.resets_at = (
            tenant,
            window,
            limit_usd,
            resets_at,
        )
        super().__init__(
            f"tenant {tenant!r} has exhausted its {window} budget of ${limit_usd:g}; "
            f"it resets at {resets_at.isoformat()}"
        )


class InFlightLimitExceeded(BudgetExhausted):
    """The tenant already holds ``limit`` reservations in flight (RESOURCE_EXHAUSTED).

    ``window`` is ``in_flight``; ``resets_at`` is the latest time a slot frees up (the
    request timeout), ``limit_usd`` is 0. Bounding calls in flight bounds how far
    concurrent calls can overspend a budget.
    """

    def __init__(self, tenant: str, limit: int, resets_at: datetime) -> None:
        self.tenant, self.window, self.limit_usd, self.resets_at = (
            tenant,
            "in_flight",
            0.0,
            resets_at,
        )
        self.limit = limit
        RouterError.__init__(
            self,
            f"tenant {tenant!r} already has {limit} calls in flight "
            "([budgets] max_in_flight_per_tenant); retry when one finishes",
        )


class QuotaExceeded(BudgetExhausted):
    """A per-tenant quota other than money is used up (RESOURCE_EXHAUSTED).

    ``window`` names the quota (e.g. ``feedback_per_minute``, ``feedback_sources``);
    ``retry_after_s`` is when trying again can succeed, ``None`` when it cannot.
    """

    def __init__(
        self,
        tenant: str,
        quota: str,
        limit: int,
        resets_at: datetime,
        retry_after_s: float | None,
        detail: str,
    ) -> None:
        self.tenant, self.window, self.limit_usd, self.resets_at = tenant, quota, 0.0, resets_at
        self.limit = limit
        self.retry_after_s = retry_after_s
        RouterError.__init__(self, detail)


class RateLimited(RouterError):
    """A tenant sent requests faster than ``[limits] tenant_requests_per_second`` allows
    (maps to RESOURCE_EXHAUSTED with a RetryInfo)."""

    def __init__(self, tenant: str, rate: float, retry_after_s: float) -> None:
        self.tenant, self.rate, self.retry_after_s = tenant, rate, retry_after_s
        super().__init__(
            f"tenant {tenant!r} exceeded {rate:g} requests per second; "
            f"retry in {retry_after_s:.3f} s"
        )


class StreamStalled(RouterError):
    """The caller stopped reading a stream for longer than
    ``[execution] stream_idle_timeout_s`` (maps to DEADLINE_EXCEEDED)."""


class Unauthenticated(RouterError):
    """The call carries no valid API key (maps to UNAUTHENTICATED)."""


class StorageUnavailable(RouterError):
    """A storage backend could not be reached after retries (maps to UNAVAILABLE).

    Nothing was acknowledged; the caller may retry.
    """


class ExecutionFailed(RouterError):
    """Execute could not produce an answer: every attempt failed, or a stream broke.

    Maps to UNAVAILABLE. ``summary`` (a ``modelrouter.execution.ExecutionSummary``) lists
    every attempt with its usage and cost so far; ``retry_after_s`` is the longest wait an
    upstream asked for, when any did.
    """

    def __init__(self, message: str, summary: object, retry_after_s: float | None = None) -> None:
        self.summary = summary
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ExecutionDeadlineExceeded(ExecutionFailed):
    """The caller's deadline (or ``execution.request_timeout_s``) ran out (DEADLINE_EXCEEDED)."""


#: Errors that are the caller's mistake or choice; every other error is a server fault
#: (OpenTelemetry marks only those spans as errors). ``modelrouter.status`` gives each its
#: gRPC code.
CLIENT_ERRORS: tuple[type[RouterError], ...] = (
    InvalidRequest,
    NotFound,
    NoEligibleModel,
    ModelUnavailable,
    BudgetExhausted,
    RateLimited,
    StreamStalled,
    Unauthenticated,
    ConfigError,
)


def is_server_fault(error: BaseException) -> bool:
    """Whether ``error`` means the server (or an upstream) failed, not the caller."""
    return not isinstance(error, CLIENT_ERRORS)
