"""Periodic upkeep of shared state: reap abandoned reservations, sweep old decisions.

``Maintenance(budgets, decisions).start()`` runs both in one background task beside the
server; ``aclose()`` stops it. Each step is also a plain coroutine a test (or an operator
job) can call. Every replica may run it: each step is atomic per batch in the store, so
replicas sweeping together only share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..errors import StorageUnavailable
from .budgets import Budgets
from .interfaces import DecisionLog
from .shadow import ShadowLog

log = logging.getLogger(__name__)

#: Defaults of ``[storage]`` until the configuration carries them.
RETENTION_DAYS = 30
RETENTION_SWEEP_BATCH = 1000
DAY_S = 86_400


async def sweep_decisions(
    decisions: DecisionLog,
    retention_days: float = RETENTION_DAYS,
    batch: int = RETENTION_SWEEP_BATCH,
    now: float | None = None,
) -> int:
    """Delete decisions (and their feedback) older than ``retention_days``, ``batch`` per
    transaction so no sweep holds the log for long. Returns how many were deleted.
    ``retention_days <= 0`` keeps everything."""
    if retention_days <= 0:
        return 0
    before = (time.time() if now is None else now) - retention_days * DAY_S
    total = 0
    while True:
        deleted = await decisions.sweep(before, batch)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let requests in between batches


class Maintenance:
    def __init__(
        self,
        budgets: Budgets,
        decisions: DecisionLog,
        *,
        shadow: ShadowLog | None = None,
        retention_days: float = RETENTION_DAYS,
        retention_sweep_batch: int = RETENTION_SWEEP_BATCH,
        reap_interval_s: float = 30.0,
        sweep_interval_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budgets = budgets
        self.decisions = decisions
        self.shadow = shadow
        self.retention_days = retention_days
        self.retention_sweep_batch = retention_sweep_batch
        self.reap_interval_s = reap_interval_s
        self.sweep_interval_s = sweep_interval_s
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: float | None = None) -> tuple[int, int]:
        """One reap and one sweep: (reservations released, decisions deleted)."""
        now = self.clock() if now is None else now
        reaped = await self.budgets.reap(now)
        swept = await self._sweep(now)
        return reaped, swept

    async def _sweep(self, now: float) -> int:
        swept = await sweep_decisions(
            self.decisions, self.retention_days, self.retention_sweep_batch, now
        )
        if self.shadow is not None and self.retention_days > 0:
            # Shadow labels carry prompts when the log does: the same retention applies.
            await self.shadow.sweep(now - self.retention_days * DAY_S)
        return swept

    async def run(self) -> None:
        """Reap every ``reap_interval_s`` and sweep every ``sweep_interval_s`` until cancelled.
        A store outage is logged and tried again at the next tick."""
        next_sweep = 0.0
        while True:
            now = self.clock()
            try:
                await self.budgets.reap(now)
                if now >= next_sweep:
                    swept = await self._sweep(now)
                    next_sweep = now + self.sweep_interval_s
                    if swept:
                        log.info(
                            "retention: deleted %d decision(s) older than %g days",
                            swept,
                            self.retention_days,
                        )
            except StorageUnavailable as error:
                log.warning("state maintenance: %s", error)
            await asyncio.sleep(self.reap_interval_s)

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="modelrouter-state-maintenance")
        return self._task

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
