"""One request, top to bottom: validate -> classify -> select -> execute -> record.

This file is the whole path of a request; each stage is a module of its own with one
job, built once by ``create_server`` and handed what it needs:

1. :mod:`.validate`: names that match nothing are refused before any work is done.
2. :mod:`.classify`: complexity and task type, exactly once per request.
3. :mod:`.select`: the chosen model and its ordered fallbacks, steered by budget and
   feedback; a model the caller named goes first.
4. :mod:`.execute`: the provider calls, with retries, failover and per-attempt budget
   holds (:mod:`.budget`).
5. :mod:`.record`: budget settlement, the decision log, stats, metrics and span
   attributes, written once from the decision and its outcome.
6. :mod:`modelrouter.shadow`: a sampled share of answered calls is answered again by a
   reference model and judged, off the request path (``[shadow]``; off by default).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncGenerator

from ..decision import Decision, ExecutionSummary
from ..shadow import ShadowEvaluator
from ..state.budgets import Budgets
from ..telemetry import Telemetry
from ..telemetry.describe import classification_attributes
from ..types import Classification, RoutingRequest
from .budget import AttemptBudget
from .call import Call
from .classify import Classify
from .execute import Executor, StreamEvent
from .record import Record
from .select import Select
from .validate import Validate


class Pipeline:
    def __init__(
        self,
        *,
        validate: Validate,
        classify: Classify,
        select: Select,
        executor: Executor,
        budgets: Budgets,
        record: Record,
        shadow: ShadowEvaluator,
        telemetry: Telemetry,
    ) -> None:
        self._validate = validate
        self._classify = classify
        self._select = select
        self._executor = executor
        self._budgets = budgets
        self._record = record
        self._shadow = shadow
        self._telemetry = telemetry

    async def classify(self, call: Call, request: RoutingRequest) -> Classification:
        """Classify only: nothing is chosen and nothing is recorded but the span."""
        self._validate(request)
        classification = await self._classify(request, call.span)
        await self._record.classified(request, classification, f"classify:{uuid.uuid4()}")
        if call.span.is_recording():
            call.span.set_attributes(classification_attributes(classification))
        return classification

    async def route(self, call: Call, request: RoutingRequest) -> Decision:
        """Choose a model; the decision is logged before it is returned."""
        decision = await self._decide(call, request, executing=False)
        await self._record.routed(request, decision)
        return decision

    async def execute(
        self, call: Call, request: RoutingRequest, *, temperature: float | None = None
    ) -> ExecutionSummary:
        """Choose a model and call it (failing over); the whole answer."""
        decision = await self._decide(call, request, executing=True)
        return await self.execute_decision(call, request, decision, temperature=temperature)

    async def execute_decision(
        self,
        call: Call,
        request: RoutingRequest,
        decision: Decision,
        *,
        temperature: float | None = None,
    ) -> ExecutionSummary:
        """Call the models of a decision already made (by :meth:`route`, say)."""
        budget = AttemptBudget(self._budgets, request.tenant, decision)
        run = self._executor.start(
            request, decision, budget, timeout_s=call.timeout_s, temperature=temperature
        )
        error: BaseException | None = None
        try:
            summary = await run.complete()
            self._shadow.offer(request, summary)
            return summary
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._record.executed(
                call, request, run.summary(), error, budget=budget, temperature=temperature
            )

    async def stream(
        self, call: Call, request: RoutingRequest, *, temperature: float | None = None
    ) -> AsyncGenerator[StreamEvent | ExecutionSummary, None]:
        """Execute with the answer streamed: text deltas and tool-call pieces as they
        arrive, then one :class:`ExecutionSummary`, recorded before it is yielded."""
        decision = await self._decide(call, request, executing=True)
        budget = AttemptBudget(self._budgets, request.tenant, decision)
        run = self._executor.start(
            request,
            decision,
            budget,
            timeout_s=call.timeout_s,
            temperature=temperature,
            streaming=True,
        )
        recorded = False
        # A streamed summary carries no text (the caller has the deltas): keep it only
        # when shadow evaluation will judge this answer.
        text: list[str] | None = [] if self._shadow.samples(request, decision) else None
        try:
            # Closing this generator closes the run's first, so that an attempt cut short
            # is on record before the request is.
            async with contextlib.aclosing(run.stream()) as events:
                async for event in events:
                    if text is not None and isinstance(event, str):
                        text.append(event)
                    yield event
            summary = run.summary()
            recorded = True
            await self._record.executed(
                call, request, summary, None, budget=budget, temperature=temperature
            )
            if text is not None:
                self._shadow.offer(request, dataclasses.replace(summary, text="".join(text)))
            yield summary
        except BaseException as exc:  # also GeneratorExit: the caller stopped reading
            if not recorded:
                await self._record.executed(
                    call, request, run.summary(), exc, budget=budget, temperature=temperature
                )
            raise

    async def _decide(self, call: Call, request: RoutingRequest, *, executing: bool) -> Decision:
        """Stages 1 to 3, in a ``route`` span. ``executing``: this server will call the
        models (Route alone may choose one whose API key only the caller holds)."""
        self._validate(request)
        started = time.perf_counter()
        with self._telemetry.child_span("route", call.span) as route_span:
            classification = await self._classify(request, route_span)
            decision = await self._select(request, classification, executing=executing)
            await self._record.classified(request, classification, f"{decision.decision_id}:judge")
            routing_s = time.perf_counter() - started
            self._record.decided(call, request, decision, route_span, routing_s)
        return decision
