"""Per-tenant budgets: reserve before a provider call, settle after, release on failure.

Windows are calendar windows in UTC: the hour, the day and the month. A reservation
holds the request's maximum cost (prompt estimate plus max output tokens) in every
window at once, atomically in the store, so concurrent requests and several replicas
never commit more than the budget: spend can exceed a limit only by what a call costs
beyond its own reservation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..config import BudgetsConfig, DegradeTier
from ..errors import BudgetExhausted
from .interfaces import Bucket, HotState, to_nano, to_usd

WINDOWS = ("hour", "day", "month")


def window_bounds(window: str, now: datetime) -> tuple[str, datetime]:
    """Label of the window instance containing ``now`` and when it ends (UTC)."""
    if window == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H"), start + timedelta(hours=1)
    if window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start + timedelta(days=1)
    if window == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return start.strftime("%Y-%m"), end
    raise ValueError(f"unknown budget window {window!r}")


@dataclass
class Reservation:
    """Money held for one request. Settle or release it exactly once."""

    tenant: str
    amount_usd: float
    buckets: tuple[Bucket, ...]
    amount: int
    done: bool = field(default=False)


@dataclass(frozen=True, slots=True)
class WindowUsage:
    window: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    resets_at: datetime

    @property
    def remaining_usd(self) -> float:
        return max(self.limit_usd - self.spent_usd - self.reserved_usd, 0.0)

    @property
    def remaining_fraction(self) -> float:
        return self.remaining_usd / self.limit_usd if self.limit_usd > 0 else 0.0


class Budgets:
    def __init__(
        self, config: BudgetsConfig, store: HotState, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _buckets(self, tenant: str) -> list[tuple[Bucket, datetime]]:
        now = self._now()
        result = []
        for window, limit in self.config.limits_for(tenant).by_window().items():
            label, resets_at = window_bounds(window, now)
            ttl = int((resets_at - now).total_seconds()) + 3600
            result.append((Bucket(window, label, to_nano(limit), ttl), resets_at))
        return result

    def has_limits(self, tenant: str) -> bool:
        return bool(self.config.limits_for(tenant).by_window())

    async def reserve(self, tenant: str, amount_usd: float) -> Reservation:
        """Hold ``amount_usd`` in every window of ``tenant``, or raise ``BudgetExhausted``."""
        buckets = self._buckets(tenant)
        amount = to_nano(amount_usd)
        if buckets:
            failed = await self.store.reserve(tenant, amount, [b for b, _ in buckets])
            if failed is not None:
                resets_at = next(r for b, r in buckets if b == failed)
                raise BudgetExhausted(tenant, failed.window, to_usd(failed.limit), resets_at)
        return Reservation(tenant, amount_usd, tuple(b for b, _ in buckets), amount)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual cost. A second call does nothing."""
        if reservation.done:
            return
        reservation.done = True
        if reservation.buckets:
            await self.store.settle(
                reservation.tenant, reservation.buckets, reservation.amount, to_nano(actual_usd)
            )

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the call failed before costing anything)."""
        await self.settle(reservation, 0.0)

    async def usage(self, tenant: str) -> list[WindowUsage]:
        """Spend, reservations and limits of every window with a limit, hour first."""
        buckets = self._buckets(tenant)
        counters = await self.store.usage(tenant, [b for b, _ in buckets])
        return [
            WindowUsage(b.window, to_usd(b.limit), to_usd(c.spent), to_usd(c.reserved), resets_at)
            for (b, resets_at), c in zip(buckets, counters, strict=True)
        ]

    def degrade_tier(self, usage: list[WindowUsage]) -> tuple[DegradeTier, WindowUsage] | None:
        """The lowest degrade tier the tightest window has fallen under, if any."""
        if not usage or not self.config.degrade:
            return None
        tightest = min(usage, key=lambda u: u.remaining_fraction)
        chosen = None
        for tier in self.config.degrade:  # largest threshold first
            if tightest.remaining_fraction < tier.remaining_below:
                chosen = tier
        return (chosen, tightest) if chosen is not None else None

    def exhausted(self, tenant: str, usage: list[WindowUsage]) -> BudgetExhausted | None:
        for u in usage:
            if u.remaining_usd <= 0:
                return BudgetExhausted(tenant, u.window, u.limit_usd, u.resets_at)
        return None
