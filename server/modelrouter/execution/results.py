"""What execution produces: one record per attempt and a summary of the whole call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..base import Usage

if TYPE_CHECKING:
    from ..router import Decision

OK = "ok"
ERROR = "error"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One call to one model. ``usage`` is what the provider reported (``None``: nothing)."""

    model: str
    provider: str
    outcome: str
    latency_ms: float
    error_type: str = ""
    error_message: str = ""
    usage: Usage | None = None
    cost_usd: float = 0.0
    #: Usage was estimated from the text because the provider failed before reporting it.
    usage_estimated: bool = False


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """The outcome of Execute, successful or not.

    On success ``model``/``provider`` name the model that answered and ``usage`` is its
    call's usage; on failure they are empty and ``usage`` sums every attempt.
    ``cost_usd`` always sums every attempt that used tokens.
    """

    decision: Decision
    attempts: tuple[AttemptRecord, ...]
    usage: Usage
    cost_usd: float
    latency_ms: float
    text: str = ""
    model: str = ""
    provider: str = ""
    finish_reason: str = ""
    #: ExecuteStream only: deltas reached the caller before the failure.
    stream_started: bool = False
    usage_estimated: bool = False
    #: Models passed over without a call, with the reason (circuit open, window too small).
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)
