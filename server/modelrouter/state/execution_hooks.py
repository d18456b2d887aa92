"""Budgets and the decision log around Execute, as an execution listener.

Before the first attempt the request's maximum cost on the selected model (prompt
estimate plus max output tokens) is reserved; a tenant out of budget is refused before
anything is called upstream. After the last attempt, successful or not, the reservation
is settled with the actual cost of every attempt (zero releases it) and the decision is
completed in the log with model, cost, latency and outcome.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..execution.listeners import ExecutionListener
from ..execution.results import ExecutionSummary
from ..types import RoutingRequest
from .budgets import Reservation

if TYPE_CHECKING:
    from ..router import Decision
    from .service import StateServices

log = logging.getLogger(__name__)


class StateExecutionListener(ExecutionListener):
    def __init__(self, state: StateServices) -> None:
        self.state = state
        self._reservations: dict[str, Reservation] = {}

    async def execution_started(self, request: RoutingRequest, decision: Decision) -> None:
        budgets = self.state.budgets
        if budgets.has_limits(request.tenant):
            amount = decision.selection.selected.estimated_cost_usd
            self._reservations[decision.decision_id] = await budgets.reserve(request.tenant, amount)

    async def execution_finished(
        self,
        request: RoutingRequest,
        decision: Decision,
        summary: ExecutionSummary | None,
        error: BaseException | None,
    ) -> None:
        cost = summary.cost_usd if summary is not None else 0.0
        reservation = self._reservations.pop(decision.decision_id, None)
        try:
            if reservation is not None:
                await self.state.budgets.settle(reservation, cost)
        finally:
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
