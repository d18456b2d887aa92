"""Budgets and the decision log around Execute, as an execution listener.

Budgets hold money per attempt, not per request. Before every provider call (each
retry and each fallback) the listener reserves that model's maximum cost for this
request (prompt estimate plus max output tokens); the previous attempt's reservation is
settled with what that attempt actually cost first, and the last one when execution
ends (zero releases it).

Why per attempt rather than one reservation for the request:

* Reserving only the selected model let a failover to a pricier fallback spend money
  nobody had reserved, so N concurrent requests failing over could overspend by N
  fallback calls.
* Reserving the maximum over every candidate the executor may try closes that hole but
  refuses requests needlessly: a request whose cheap selected model fits would be
  refused because a pricey fallback it will probably never call does not, and every
  request in flight would hold the priciest model's cost, crowding out others.

Per attempt, what is held is exactly what the calls in flight can cost, so spend stays
within the limit whenever a call costs no more than its estimate, and exceeds it by at
most one call's estimation error otherwise: within "one request's maximum cost".

Degrade before reject: when a model's reservation does not fit, the listener passes it
over and the executor moves to the next fallback (cheapest first under the default
policy), so a request is answered by the first fallback that fits. The request is
refused with ``BudgetExhausted`` only when nothing has been called yet and no fallback
left is cheaper than the model refused; after a failed attempt, a fallback that does not
fit is skipped with the reason, which the ``ExecutionFailed`` message names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BudgetExhausted
from ..execution.listeners import ExecutionListener
from ..execution.results import AttemptRecord, ExecutionSummary
from ..types import RoutingRequest
from .budgets import Reservation

if TYPE_CHECKING:
    from ..router import Decision
    from ..selection import Candidate
    from .service import StateServices

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Hold:
    """The reservation covering one attempt: the one at ``attempt_index`` of the run."""

    reservation: Reservation
    attempt_index: int


def _attempt_cost(attempts: Sequence[AttemptRecord], index: int) -> float:
    # No record at the index: the call never started (another listener refused it).
    return attempts[index].cost_usd if index < len(attempts) else 0.0


class StateExecutionListener(ExecutionListener):
    def __init__(self, state: StateServices) -> None:
        self.state = state
        #: The reservation of the attempt in flight, per decision id.
        self._holds: dict[str, _Hold] = {}

    async def _settle(self, decision_id: str, attempts: Sequence[AttemptRecord]) -> None:
        hold = self._holds.pop(decision_id, None)
        if hold is not None:
            cost = _attempt_cost(attempts, hold.attempt_index)
            await self.state.budgets.settle(hold.reservation, cost)

    async def admit_attempt(
        self,
        request: RoutingRequest,
        decision: Decision,
        candidate: Candidate,
        attempts: Sequence[AttemptRecord],
    ) -> str | None:
        await self._settle(decision.decision_id, attempts)
        budgets = self.state.budgets
        if not budgets.has_limits(request.tenant):
            return None
        amount = candidate.estimated_cost_usd
        try:
            reservation = await budgets.reserve(request.tenant, amount)
        except BudgetExhausted as exhausted:
            candidates = decision.selection.candidates
            later = candidates[candidates.index(candidate) + 1 :]
            if not attempts and all(c.estimated_cost_usd >= amount for c in later):
                raise  # nothing called yet and nothing cheaper left: refuse the request
            return (
                f"budget: its maximum cost ${amount:.6f} does not fit in what is left of "
                f"the {exhausted.window} budget"
            )
        self._holds[decision.decision_id] = _Hold(reservation, len(attempts))
        return None

    async def execution_finished(
        self,
        request: RoutingRequest,
        decision: Decision,
        summary: ExecutionSummary | None,
        error: BaseException | None,
    ) -> None:
        cost = summary.cost_usd if summary is not None else 0.0
        try:
            await self._settle(decision.decision_id, summary.attempts if summary else ())
        finally:
            if isinstance(error, BudgetExhausted):
                outcome = "rejected"
            else:
                outcome = "ok" if error is None and summary is not None else "error"
            if await self.state.decisions.get(decision.decision_id) is None:
                # Decisions made outside Router.route (an explicit model with no policy
                # fallbacks) are logged here.
                await self.state.log_decision(
                    decision.decision_id,
                    request,
                    decision.classification,
                    decision.selection,
                    kind="execute",
                )
            await self.state.log_outcome(
                decision.decision_id,
                model=summary.model if summary is not None else "",
                actual_cost_usd=cost,
                latency_ms=summary.latency_ms if summary is not None else 0.0,
                outcome=outcome,
            )
