"""The state services the router and servicer use, built from ``[storage]`` and friends.

``open_state(config)`` connects the configured backends (a failure is a ``ConfigError``
naming the backend, so the server never starts half-connected) and returns a
``StateServices`` that steers selection by budget and feedback and logs every decision.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config, ExecutionConfig, RoutingConfig, StateConfig
from ..errors import BudgetExhausted, ConfigError, StorageUnavailable
from ..execution.circuit import CircuitBreaker
from ..selection import Selection
from ..types import Classification, RoutingRequest
from .adaptive import AdaptivePolicy
from .auth import Authenticator
from .budgets import Budgets
from .feedback import FeedbackService
from .interfaces import CandidateRecord, DecisionLog, DecisionRecord, HotState
from .memory import MemoryDecisionLog, MemoryHotState


@dataclass(frozen=True, slots=True)
class Steered:
    selection: Selection
    explored: bool = False


def _hot_store(config: StateConfig) -> HotState:
    storage = config.storage
    if storage.hot == "sqlite":
        from .sqlite import SqliteHotState

        return SqliteHotState(storage.sqlite_path)
    if storage.hot == "redis":
        from .redis import RedisHotState

        return RedisHotState(storage.redis_url, storage.redis_prefix)
    if storage.hot == "postgres":
        from .postgres import PostgresHotState

        return PostgresHotState(storage.postgres_url, storage.postgres_schema)
    return MemoryHotState()


def _decision_log(config: StateConfig) -> DecisionLog:
    storage = config.storage
    if storage.log == "sqlite":
        from .sqlite import SqliteDecisionLog

        return SqliteDecisionLog(storage.sqlite_path)
    if storage.log == "postgres":
        from .postgres import PostgresDecisionLog

        return PostgresDecisionLog(storage.postgres_url, storage.postgres_schema)
    return MemoryDecisionLog()


async def open_state(config: Config) -> StateServices:
    """Connect the configured backends; an unreachable one is a ``ConfigError``."""
    hot, decisions = _hot_store(config.state), _decision_log(config.state)
    opened = []
    try:
        for store, key in ((hot, "storage.hot"), (decisions, "storage.log")):
            try:
                await store.open()
            except StorageUnavailable as error:
                raise ConfigError(f"{config.source}: {key} = {store.name!r}: {error}") from None
            opened.append(store)
    except BaseException:
        for store in opened:
            await store.aclose()
        raise
    return StateServices(config.state, hot, decisions)


class StateServices:
    def __init__(self, config: StateConfig, hot: HotState, decisions: DecisionLog) -> None:
        self.config = config
        self.hot = hot
        self.decisions = decisions
        self.budgets = Budgets(config.budgets, hot)
        self.adaptive = AdaptivePolicy(config.adaptive, hot)
        self.feedback = FeedbackService(decisions, self.adaptive)
        self.auth = Authenticator(config.auth)

    async def aclose(self) -> None:
        await self.hot.aclose()
        await self.decisions.aclose()

    async def circuit_breaker(self, execution: ExecutionConfig) -> CircuitBreaker | None:
        """The circuit breaker replicas share through the hot store (``hot = "redis"``), or
        ``None``: memory, SQLite and PostgreSQL keep the executor's in-process one."""
        return await self.hot.circuit_breaker(
            execution.circuit_failure_threshold, execution.circuit_cooldown_s
        )

    async def steer(
        self,
        request: RoutingRequest,
        classification: Classification,
        selection: Selection,
        reselect: Callable[[RoutingRequest, RoutingConfig], Selection],
        routing: RoutingConfig,
    ) -> Steered:
        """Apply budget degradation and the adaptive policy to a selection.

        ``reselect(request, routing)`` reruns selection with other settings. Raises
        ``BudgetExhausted`` when no eligible model fits what is left of the budget.
        """
        tenant = request.tenant
        notes: list[str] = []
        usage = await self.budgets.usage(tenant) if self.budgets.has_limits(tenant) else []
        exhausted = self.budgets.exhausted(tenant, usage)
        if exhausted is not None:
            raise exhausted
        degraded = self.budgets.degrade_tier(usage)
        if degraded is not None:
            tier, window = degraded
            floors = {level: min(q, tier.quality_floor) for level, q in routing.min_quality.items()}
            cheaper = dataclasses.replace(
                request,
                constraints=dataclasses.replace(request.constraints, willingness_to_pay=None),
            )
            selection = reselect(cheaper, dataclasses.replace(routing, min_quality=floors))
            notes.append(
                f"budget degraded: {window.remaining_fraction:.0%} of the {window.window} budget "
                f"left (< {tier.remaining_below:.0%}), "
                f"quality floor lowered to {tier.quality_floor:.2f}"
            )
        if usage:
            tightest = min(usage, key=lambda u: u.remaining_usd)
            fits = [
                c for c in selection.candidates if c.estimated_cost_usd <= tightest.remaining_usd
            ]
            if not fits:
                raise BudgetExhausted(
                    tenant, tightest.window, tightest.limit_usd, tightest.resets_at
                )
            if len(fits) < len(selection.candidates):
                notes.append(
                    f"budget: {len(selection.candidates) - len(fits)} model(s) cost more than the "
                    f"${tightest.remaining_usd:.6f} left in the {tightest.window} budget"
                )
                selection = dataclasses.replace(
                    selection, selected=fits[0], fallbacks=tuple(fits[1:])
                )
        explored = False
        if self.adaptive.enabled_for(tenant) and len(selection.candidates) > 1:
            choice = await self.adaptive.choose(classification, selection.candidates)
            explored = choice.explored
            rest = tuple(c for c in selection.candidates if c is not choice.candidate)
            selection = dataclasses.replace(selection, selected=choice.candidate, fallbacks=rest)
            notes.append(choice.note)
        if notes:
            selection = dataclasses.replace(selection, reason="; ".join([*notes, selection.reason]))
        return Steered(selection, explored)

    async def log_decision(
        self,
        decision_id: str,
        request: RoutingRequest,
        classification: Classification,
        selection: Selection,
        *,
        explored: bool = False,
        kind: str = "route",
    ) -> None:
        """Commit the decision; returns only once it is durable in the decision log."""
        await self.decisions.record(
            DecisionRecord(
                decision_id=decision_id,
                tenant=request.tenant,
                created_at=time.time(),
                kind=kind,
                complexity=classification.complexity.name,
                task_type=classification.task_type.name,
                classifier=classification.classifier,
                candidates=tuple(
                    CandidateRecord(c.model.name, c.estimated_cost_usd, c.quality)
                    for c in selection.candidates
                ),
                chosen_model=selection.selected.model.name,
                estimated_cost_usd=selection.selected.estimated_cost_usd,
                reason=selection.reason,
                explored=explored,
                prompt=request.prompt if self.config.storage.log_prompts else None,
            )
        )

    async def log_outcome(
        self,
        decision_id: str,
        *,
        model: str,
        actual_cost_usd: float,
        latency_ms: float,
        outcome: str,
    ) -> None:
        """Complete an Execute decision with what happened (``outcome``: ok or error)."""
        record = await self.decisions.get(decision_id)
        if record is None:
            return
        await self.decisions.record(
            dataclasses.replace(
                record,
                kind="execute",
                chosen_model=model or record.chosen_model,
                actual_cost_usd=actual_cost_usd if math.isfinite(actual_cost_usd) else None,
                latency_ms=latency_ms,
                outcome=outcome,
            )
        )
