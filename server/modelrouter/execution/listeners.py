"""Seams around execution for telemetry (spans per attempt) and state (budgets).

An :class:`ExecutionListener` is told when an execution and each of its attempts start and
finish. Every call happens in the task serving the request, in order, so a listener may
attach a tracing context in ``attempt_started`` and detach it in ``attempt_finished``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..base import ProviderCall
from ..config import ModelSpec
from ..types import RoutingRequest
from .results import AttemptRecord, ExecutionSummary

if TYPE_CHECKING:
    from ..router import Decision
    from ..selection import Candidate


@dataclass(slots=True)
class AttemptInfo:
    """One attempt as it starts. ``scratch`` is free space for a listener (a span, a timer)."""

    model: ModelSpec
    provider: str
    provider_kind: str
    call: ProviderCall
    #: 0 for the first call to this model in this execution, 1 for its first retry, ...
    retry: int
    streaming: bool
    scratch: dict[str, Any] = field(default_factory=dict)


class ExecutionListener:
    """Override what you need; every method does nothing by default."""

    async def execution_started(self, request: RoutingRequest, decision: Decision) -> None:
        """Before the first attempt. Raise (for example ``BudgetExhausted``) to refuse the call:
        the error reaches the caller and nothing is called upstream."""

    async def execution_finished(
        self,
        request: RoutingRequest,
        decision: Decision,
        summary: ExecutionSummary | None,
        error: BaseException | None,
    ) -> None:
        """After the last attempt, always (also on failure and cancellation).

        ``summary`` carries the actual cost (also on failure, from the error's summary);
        it is ``None`` only when execution ended before any bookkeeping (cancelled early).
        """

    async def admit_attempt(
        self,
        request: RoutingRequest,
        decision: Decision,
        candidate: Candidate,
        attempts: Sequence[AttemptRecord],
    ) -> str | None:
        """Before every provider call (each retry too), ahead of ``attempt_started``.

        ``attempts`` are the calls made so far in this execution, oldest first. Return
        ``None`` to let the call go ahead, or a reason to pass ``candidate`` over: the
        executor moves on to the next fallback and lists the model in ``summary.skipped``.
        Raise (for example ``BudgetExhausted``) to end the execution with that error.
        """
        return None

    def attempt_started(self, attempt: AttemptInfo) -> None:
        """Just before the provider is called."""

    def attempt_finished(self, attempt: AttemptInfo, record: AttemptRecord) -> None:
        """When the call ended: answered, failed, or cancelled. For a stream, after its end."""
