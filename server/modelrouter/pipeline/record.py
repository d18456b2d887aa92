"""Stage 5, record: write out what one request decided and what it cost, once, at the end.

From the :class:`~modelrouter.decision.Decision` (and, for Execute, the
:class:`~modelrouter.decision.ExecutionSummary`) this stage settles the budget holds,
writes the decision log row, counts the stats and metrics, and describes the outcome on
the call's span. Nothing upstream of it records any of these, so each is written once and
all of them agree.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from opentelemetry.trace import Span

from ..decision import Decision, ExecutionSummary
from ..errors import BudgetExhausted
from ..state.budgets import Budgets
from ..state.interfaces import CandidateRecord, DecisionLog, DecisionRecord, HotState
from ..telemetry import Telemetry
from ..telemetry import attributes as a
from ..telemetry.attempts import AttemptTelemetry
from ..telemetry.describe import decision_attributes, output_json
from ..types import Classification, Complexity, RoutingRequest, TaskType
from .budget import AttemptBudget, finish_even_if_cancelled
from .call import Call
from .select import session_key


class Record:
    def __init__(
        self,
        telemetry: Telemetry,
        attempts: AttemptTelemetry,
        decisions: DecisionLog,
        sessions: HotState,
        budgets: Budgets,
        *,
        log_prompts: bool,
        session_ttl_s: float,
    ) -> None:
        self.telemetry = telemetry
        self.attempts = attempts
        self.decisions = decisions
        self.sessions = sessions
        self.budgets = budgets
        self.log_prompts = log_prompts
        self.session_ttl_s = session_ttl_s
        # Few distinct sets (models x complexities x task types x methods): built once.
        self._decision_points: dict[tuple[str, str, Complexity, TaskType, str], dict[str, Any]] = {}

    async def classified(
        self, request: RoutingRequest, classification: Classification, charge_id: str
    ) -> None:
        """A classifier that called a model (the LLM judge) spent the tenant's money: it is
        charged to the tenant's budget under ``charge_id`` and counted as a cost."""
        features = classification.features
        cost = features.get("judge_cost_usd", 0.0)
        if cost <= 0:
            return
        estimated = features.get("judge_usage_estimated", 0.0) > 0
        await finish_even_if_cancelled(
            self.budgets.charge(request.tenant, charge_id, cost, estimated=estimated)
        )
        telemetry = self.telemetry
        if telemetry.metering:
            telemetry.metrics.cost.add(cost, {a.MODEL: f"classifier:{classification.classifier}"})

    def decided(
        self,
        call: Call,
        request: RoutingRequest,
        decision: Decision,
        route_span: Span,
        routing_s: float,
    ) -> None:
        """A decision was made (by Route, Execute or ExecuteStream): count it, time it and
        describe it on the ``route`` span and the call's span, while the ``route`` span is
        still open."""
        telemetry = self.telemetry
        telemetry.stats.record_decision(decision.selection, request.tenant)
        if telemetry.metering:
            telemetry.metrics.decisions.add(1, self._decision_point(call.method, decision))
            telemetry.metrics.routing_duration.record(
                routing_s, {a.CLASSIFIER: decision.classification.classifier}
            )
        if telemetry.tracing:
            spans = [s for s in (route_span, call.span) if s.is_recording()]
            if spans:
                attributes = decision_attributes(request, decision)
                for span in spans:
                    span.set_attributes(attributes)

    async def routed(self, request: RoutingRequest, decision: Decision) -> None:
        """A Route decision: durable in the log before the caller hears of it."""
        await self.decisions.record(self._row(request, decision, kind="route"))
        await self._stick(request, decision.selection.selected.model.name)

    async def _stick(self, request: RoutingRequest, model: str) -> None:
        """The session of ``request`` (if any) sticks to ``model``, the one that served it."""
        if request.session_id is not None and request.model is None and model:
            await self.sessions.stick_session(
                session_key(request), model, self.session_ttl_s, time.time()
            )

    async def executed(
        self,
        call: Call,
        request: RoutingRequest,
        summary: ExecutionSummary,
        error: BaseException | None,
        *,
        budget: AttemptBudget | None,
        temperature: float | None,
    ) -> None:
        """An Execute or ExecuteStream call ended (answered, failed or cancelled).

        Runs to completion even when the calling task is cancelled meanwhile: the money
        an upstream consumed must be settled whatever the caller does.
        """
        await finish_even_if_cancelled(
            self._executed(call, request, summary, error, budget, temperature)
        )

    async def _executed(
        self,
        call: Call,
        request: RoutingRequest,
        summary: ExecutionSummary,
        error: BaseException | None,
        budget: AttemptBudget | None,
        temperature: float | None,
    ) -> None:
        if budget is not None:
            await budget.settle(summary.attempts)
            await budget.release_unused()
        decision = summary.decision
        if isinstance(error, BudgetExhausted):
            outcome = "rejected"
        else:
            outcome = "ok" if error is None else "error"
        row = self._row(request, decision, kind="execute")
        row = _with_outcome(row, summary, outcome)
        await self.decisions.record(row)
        await self._stick(request, summary.model)
        self.attempts.record(
            call.span,
            request,
            summary,
            streaming=call.method == "ExecuteStream",
            temperature=temperature,
        )
        self.telemetry.stats.record_execution(summary.model, request.tenant)
        span = call.span
        if span.is_recording():
            attributes: dict[str, Any] = {
                a.ATTEMPTS: len(summary.attempts),
                a.COST_USD: summary.cost_usd,
            }
            if summary.model:
                attributes[a.RESPONSE_MODEL] = summary.model
                positions = [c.model.name for c in decision.selection.candidates]
                position = positions.index(summary.model) if summary.model in positions else -1
                attributes[a.FALLBACK_POSITION] = position
            if summary.stream_started:
                attributes[a.STREAM_STARTED] = True
            if self.telemetry.capture_content and summary.text:
                attributes[a.GEN_AI_OUTPUT_MESSAGES] = output_json(
                    summary.text, summary.finish_reason
                )
            span.set_attributes(attributes)

    def _decision_point(self, method: str, decision: Decision) -> dict[str, Any]:
        """Attributes of a ``modelrouter.decisions`` point (shared: do not modify)."""
        c = decision.classification
        # Per A/B arm too (router_version): few versions are live at once.
        key = (
            method,
            decision.selection.selected.model.name,
            c.complexity,
            c.task_type,
            c.router_version,
        )
        point = self._decision_points.get(key)
        if point is None:
            point = self._decision_points[key] = {
                a.SELECTED_MODEL: key[1],
                a.COMPLEXITY: c.complexity.name.lower(),
                a.TASK_TYPE: c.task_type.name.lower(),
                a.RPC_METHOD: method,
            }
            if c.router_version:
                point[a.ROUTER_VERSION] = c.router_version
        return point

    def _row(self, request: RoutingRequest, decision: Decision, *, kind: str) -> DecisionRecord:
        classification, selection = decision.classification, decision.selection
        return DecisionRecord(
            decision_id=decision.decision_id,
            tenant=request.tenant,
            created_at=time.time(),
            kind=kind,
            complexity=classification.complexity.name,
            task_type=classification.task_type.name,
            classifier=classification.classifier,
            candidates=(
                *(
                    CandidateRecord(
                        c.model.name, c.estimated_cost_usd, c.quality, c.estimated_latency_ms
                    )
                    for c in selection.candidates
                ),
                *(CandidateRecord(m, 0.0, 0.0, excluded=why) for m, why in selection.excluded),
            ),
            chosen_model=selection.selected.model.name,
            estimated_cost_usd=selection.selected.estimated_cost_usd,
            reason=selection.reason,
            explored=decision.explored,
            prompt=request.prompt if self.log_prompts else None,
            router_version=classification.router_version,
        )


def _with_outcome(row: DecisionRecord, summary: ExecutionSummary, outcome: str) -> DecisionRecord:
    return dataclasses.replace(
        row,
        chosen_model=summary.model or row.chosen_model,
        actual_cost_usd=summary.cost_usd if math.isfinite(summary.cost_usd) else None,
        latency_ms=summary.latency_ms,
        outcome=outcome,
    )
