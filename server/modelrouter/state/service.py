"""The state services the router and servicer use, built from ``[storage]`` and friends.

``open_state(config)`` connects the configured backends (a failure is a ``ConfigError``
naming the backend, so the server never starts half-connected) and returns a
``StateServices``: budgets, the adaptive policy, feedback and the decision log.
"""

from __future__ import annotations

from ..config import Config, ExecutionConfig, StateConfig
from ..errors import ConfigError, StorageUnavailable
from ..execution.circuit import CircuitBreaker
from .adaptive import AdaptivePolicy
from .batching import BatchedDecisionLog
from .budgets import Budgets
from .feedback import FeedbackService
from .interfaces import DecisionLog, HotState
from .maintenance import Maintenance
from .memory import MemoryDecisionLog, MemoryHotState
from .shadow import MemoryShadowLog, ShadowLog


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
    """The configured log; a durable one group-commits its rows off the request path
    (:mod:`.batching` says what that keeps and what a crash can lose)."""
    storage = config.storage
    if storage.log == "sqlite":
        from .sqlite import SqliteDecisionLog

        return BatchedDecisionLog(SqliteDecisionLog(storage.sqlite_path))
    if storage.log == "postgres":
        from .postgres import PostgresDecisionLog

        return BatchedDecisionLog(
            PostgresDecisionLog(storage.postgres_url, storage.postgres_schema)
        )
    return MemoryDecisionLog()


def _shadow_log(config: StateConfig) -> ShadowLog:
    """Shadow evaluation's results, in the decision log's database."""
    storage = config.storage
    if storage.log == "sqlite":
        from .shadow import SqliteShadowLog

        return SqliteShadowLog(storage.sqlite_path)
    if storage.log == "postgres":
        from .shadow import PostgresShadowLog

        return PostgresShadowLog(storage.postgres_url, storage.postgres_schema)
    return MemoryShadowLog()


async def open_state(config: Config) -> StateServices:
    """Connect the configured backends; an unreachable one is a ``ConfigError``."""
    hot, decisions = _hot_store(config.state), _decision_log(config.state)
    shadow = _shadow_log(config.state)
    opened: list[HotState | DecisionLog | ShadowLog] = []
    try:
        for store, key in (
            (hot, "storage.hot"),
            (decisions, "storage.log"),
            (shadow, "storage.log"),
        ):
            try:
                await store.open()
            except StorageUnavailable as error:
                raise ConfigError(f"{config.source}: {key} = {store.name!r}: {error}") from None
            opened.append(store)
    except BaseException:
        for store in opened:
            await store.aclose()
        raise
    return StateServices(config, hot, decisions, shadow)


class StateServices:
    """Budgets, adaptive policy, feedback and the decision log over the opened stores, and
    their upkeep (reaping abandoned reservations, sweeping decisions past retention)."""

    def __init__(
        self,
        config: Config,
        hot: HotState,
        decisions: DecisionLog,
        shadow: ShadowLog | None = None,
    ) -> None:
        state, limits = config.state, config.limits
        self.config = state
        self.hot = hot
        self.decisions = decisions
        #: Shadow evaluation's results (training labels), beside the decision log.
        self.shadow = shadow if shadow is not None else MemoryShadowLog()
        self.budgets = Budgets(
            state.budgets, hot, request_timeout_s=config.execution.request_timeout_s
        )
        self.adaptive = AdaptivePolicy(state.adaptive, hot)
        self.feedback = FeedbackService(
            decisions,
            self.adaptive,
            hot=hot,
            max_sources=limits.max_feedback_sources,
            per_minute=limits.feedback_per_minute_per_tenant,
            max_source_chars=limits.max_feedback_source_chars,
            max_comment_chars=limits.max_feedback_comment_chars,
        )
        self.maintenance = Maintenance(
            self.budgets,
            decisions,
            shadow=self.shadow,
            retention_days=state.storage.retention_days,
            retention_sweep_batch=state.storage.retention_sweep_batch,
        )

    async def aclose(self) -> None:
        await self.maintenance.aclose()
        await self.hot.aclose()
        await self.decisions.aclose()
        await self.shadow.aclose()

    async def circuit_breaker(self, execution: ExecutionConfig) -> CircuitBreaker | None:
        """The circuit breaker replicas share through the hot store (``hot = "redis"``), or
        ``None``: memory, SQLite and PostgreSQL keep the executor's in-process one."""
        return await self.hot.circuit_breaker(
            execution.circuit_failure_threshold, execution.circuit_cooldown_s
        )
