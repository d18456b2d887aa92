"""Domain errors. ``modelrouter.status`` is the one place that turns them into gRPC statuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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

    ``constraint`` names the constraint that removed the last candidates.
    """

    def __init__(self, constraint: str, detail: str) -> None:
        self.constraint = constraint
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
