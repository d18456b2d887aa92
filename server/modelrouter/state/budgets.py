"""Per-tenant budgets: reserve before a provider call, settle after, release on failure.

Windows are calendar windows in UTC: the hour, the day and the month. A reservation
holds the request's maximum cost (prompt estimate plus max output tokens) in every
window at once, atomically in the store, so concurrent requests and several replicas
never commit more than the budget: spend can exceed a limit only by what a call costs
beyond its own reservation.

Every reservation is keyed by an attempt id (the caller's, or a fresh one): reserving or
settling the same attempt twice is applied once, in every backend. At most
``max_in_flight_per_tenant`` reservations are held per tenant at once, so however many
requests race, what they can spend beyond their reservations is bounded. Reservations
whose holder vanished (a crashed replica, a lost settle) are released by ``reap`` once
they are older than ``request_timeout_s`` plus a grace; ``maintenance.Maintenance``
calls it periodically beside the server.

Reading usage (every Route of a tenant with limits does, to degrade or refuse early) is
shared: callers that ask for a tenant's usage while a read of it is in flight await that
read instead of starting their own (single flight), and a read that completed less than
``usage_max_age_s`` (0.05 s by default) ago answers later callers too, so a burst of
Routes costs the store about one read per 50 ms per tenant, not one per request. What a
caller may rely on:

* the usage it gets includes every write (reserve, settle, charge, release, reap) that
  this process completed before the call: a read that started before such a write
  completed is never shared with a caller that came after it;
* it started at most ``usage_max_age_s`` plus one store round trip before the call, so
  other replicas' spend shows up at most that much later than with a read of one's own.
  ``usage_max_age_s = 0`` keeps the single flight only.

Why that staleness is safe: the usage read only steers selection (degrade as a budget
runs low, refuse early when it is gone). What keeps spend within the budget is the
reservation: before every provider call its maximum cost is reserved atomically in the
store against the current counters, in every backend and across replicas
(``pipeline/budget.py``). A stale read can make a Route propose a model whose reservation
is then refused (Execute passes to a cheaper fallback or refuses, as with a fresh read
that raced), or degrade one stale window later; it can never let requests overspend.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from ..config import BudgetsConfig, DegradeTier
from ..errors import BudgetExhausted, InFlightLimitExceeded
from .interfaces import IN_FLIGHT, Bucket, BucketUsage, HotState, to_nano, to_usd

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_ReadKey = tuple[str, tuple[tuple[str, str], ...]]

#: Defaults until the configuration carries them (``[budgets] max_in_flight_per_tenant``).
DEFAULT_MAX_IN_FLIGHT = 64
#: How long a completed usage read answers later callers (seconds; see the module doc).
DEFAULT_USAGE_MAX_AGE_S = 0.05
DEFAULT_REQUEST_TIMEOUT_S = 120.0
#: How long past the request timeout a reservation may live before it is reaped: the
#: settle of an attempt that ran to its timeout must have time to land first.
DEFAULT_REAP_GRACE_S = 60.0
DEFAULT_REAP_BATCH = 1000

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
    """Money held for one attempt. Settling it again (or retrying after an error) is safe."""

    tenant: str
    amount_usd: float
    buckets: tuple[Bucket, ...]
    amount: int
    #: The idempotency key of this reservation in the store.
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Seconds since the epoch when it was made.
    created_at: float = 0.0
    #: Set once a settle has been applied (or found already applied) in the store.
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


@dataclass(slots=True)
class _Read:
    """A usage read (in flight or recent) and the process's write count when it started."""

    writes: int
    task: asyncio.Task[list[BucketUsage]]
    #: The loop's clock when it completed successfully; ``None`` while in flight.
    finished_at: float | None = None


class Budgets:
    """Reserve before each provider attempt, settle after with what it consumed.

    ``max_in_flight_per_tenant`` (0: no cap), ``request_timeout_s`` and ``reap_grace_s``
    default to the configuration's values when it carries them.
    """

    def __init__(
        self,
        config: BudgetsConfig,
        store: HotState,
        clock: Callable[[], float] = time.time,
        *,
        max_in_flight_per_tenant: int | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        reap_grace_s: float = DEFAULT_REAP_GRACE_S,
        reap_batch: int = DEFAULT_REAP_BATCH,
        usage_max_age_s: float = DEFAULT_USAGE_MAX_AGE_S,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        if max_in_flight_per_tenant is None:
            max_in_flight_per_tenant = getattr(
                config, "max_in_flight_per_tenant", DEFAULT_MAX_IN_FLIGHT
            )
        self.max_in_flight = int(max_in_flight_per_tenant or 0)
        self.request_timeout_s = request_timeout_s
        self.reap_grace_s = reap_grace_s
        self.reap_batch = reap_batch
        if usage_max_age_s < 0:
            raise ValueError(f"usage_max_age_s must be >= 0, got {usage_max_age_s}")
        self.usage_max_age_s = usage_max_age_s
        #: Writes this process completed (reserve, settle, ...): a usage read started
        #: before the count moved is not shared with later callers.
        self._writes = 0
        #: (tenant, windows) -> the usage read in flight (or recent) and the write count at
        #: its start. An entry is dropped ``usage_max_age_s`` after its read completes.
        self._reads: dict[_ReadKey, _Read] = {}

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

    async def reserve(
        self, tenant: str, amount_usd: float, *, attempt_id: str | None = None
    ) -> Reservation:
        """Hold ``amount_usd`` in every window of ``tenant`` for one attempt.

        Idempotent per ``attempt_id``: reserving an id already reserved (or settled) holds
        nothing more and returns the same reservation. Raises ``BudgetExhausted`` when a
        window cannot fit it, ``InFlightLimitExceeded`` (a ``BudgetExhausted``) when the
        tenant already holds ``max_in_flight_per_tenant`` reservations. A tenant without
        limits holds nothing in the store (and has no in-flight cap).
        """
        now = self.clock()
        buckets = self._buckets(tenant)
        amount = to_nano(amount_usd)
        reservation = Reservation(
            tenant,
            amount_usd,
            tuple(b for b, _ in buckets),
            amount,
            attempt_id or uuid.uuid4().hex,
            now,
        )
        if buckets:
            failed = await self._write(
                self.store.reserve(
                    tenant,
                    reservation.attempt_id,
                    amount,
                    reservation.buckets,
                    now=now,
                    max_in_flight=self.max_in_flight,
                )
            )
            if failed == IN_FLIGHT:
                raise InFlightLimitExceeded(
                    tenant,
                    self.max_in_flight,
                    datetime.fromtimestamp(now + self.request_timeout_s, UTC),
                )
            if failed is not None:
                resets_at = next(r for b, r in buckets if b == failed)
                raise BudgetExhausted(tenant, failed.window, to_usd(failed.limit), resets_at)
        return reservation

    async def settle(
        self, reservation: Reservation, actual_usd: float, *, estimated: bool = False
    ) -> None:
        """Replace the reservation by the actual cost, recorded in full even when it
        exceeds the reservation. ``estimated``: the provider reported no usage, so the cost
        is our estimate. Idempotent: a second settle of the same attempt (this object or
        another with the same ``attempt_id``) changes nothing. After a ``StorageUnavailable``
        it is safe to call again."""
        if reservation.done:
            return
        if reservation.buckets:
            await self._write(
                self.store.settle(
                    reservation.tenant,
                    reservation.attempt_id,
                    reservation.buckets,
                    to_nano(max(actual_usd, 0.0)),
                    estimated=estimated,
                    now=self.clock(),
                )
            )
        reservation.done = True

    async def charge(
        self, tenant: str, attempt_id: str, actual_usd: float, *, estimated: bool = False
    ) -> None:
        """Record spend nothing was reserved for (a classifier's own model call, say),
        once per ``attempt_id``."""
        buckets = tuple(b for b, _ in self._buckets(tenant))
        if buckets and actual_usd > 0:
            await self._write(
                self.store.settle(
                    tenant,
                    attempt_id,
                    buckets,
                    to_nano(actual_usd),
                    estimated=estimated,
                    now=self.clock(),
                )
            )

    async def release_attempt(self, tenant: str, attempt_id: str) -> None:
        """Release ``attempt_id``'s reservation whether or not its reserve was seen to
        complete: a reserve cancelled in flight may still have been applied in the store.
        Releasing an attempt never reserved changes nothing."""
        buckets = tuple(b for b, _ in self._buckets(tenant))
        if buckets:
            await self._write(
                self.store.settle(tenant, attempt_id, buckets, 0, estimated=False, now=self.clock())
            )

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the call failed before costing anything)."""
        await self.settle(reservation, 0.0)

    async def in_flight(self, tenant: str) -> int:
        """Reservations ``tenant`` holds now (in the shared store: every replica's)."""
        return await self.store.in_flight(tenant)

    async def reap(self, now: float | None = None) -> int:
        """Release every reservation older than ``request_timeout_s`` + ``reap_grace_s``, in
        batches of ``reap_batch``. Returns how many were released."""
        now = self.clock() if now is None else now
        cutoff = now - self.request_timeout_s - self.reap_grace_s
        total = 0
        while True:
            released = await self._write(self.store.reap(cutoff, self.reap_batch, now))
            total += released
            if released < self.reap_batch:
                break
        if total:
            log.warning(
                "released %d reservation(s) older than %.0fs: their holders never settled",
                total,
                self.request_timeout_s + self.reap_grace_s,
            )
        return total

    async def usage(self, tenant: str) -> list[WindowUsage]:
        """Spend, reservations and limits of every window with a limit, hour first."""
        buckets = self._buckets(tenant)
        counters = await self._shared_read(tenant, [b for b, _ in buckets])
        return [
            WindowUsage(b.window, to_usd(b.limit), to_usd(c.spent), to_usd(c.reserved), resets_at)
            for (b, resets_at), c in zip(buckets, counters, strict=True)
        ]

    async def _write(self, write: Awaitable[_T]) -> _T:
        """Await a write to the store and count it, even if it failed (it may have been
        applied before the error), so no earlier read is shared after it."""
        try:
            return await write
        finally:
            self._writes += 1

    async def _shared_read(self, tenant: str, buckets: list[Bucket]) -> list[BucketUsage]:
        """The store's counters for ``buckets``, from the read in flight (or completed within
        ``usage_max_age_s``) for the same tenant and windows if no write of this process
        completed since it started, else from a new read."""
        if self.store.name == "memory":
            return await self.store.usage(tenant, buckets)  # in process: no round trip to share
        key = (tenant, tuple((b.window, b.label) for b in buckets))
        loop = asyncio.get_running_loop()
        read = self._reads.get(key)
        if (
            read is None
            or read.writes != self._writes
            or read.task.get_loop() is not loop
            or (
                read.finished_at is not None
                and loop.time() - read.finished_at > self.usage_max_age_s
            )
        ):
            task = loop.create_task(self.store.usage(tenant, buckets))
            read = _Read(self._writes, task)
            self._reads[key] = read
            task.add_done_callback(lambda done: self._read_done(key, done))
        # Shielded: one caller cancelled must not cancel the read the others await.
        return await asyncio.shield(read.task)

    def _read_done(self, key: _ReadKey, task: asyncio.Task[list[BucketUsage]]) -> None:
        read = self._reads.get(key)
        current = read is not None and read.task is task
        failed = task.cancelled() or task.exception() is not None  # retrieved: callers have it
        if not current:
            return
        if failed or self.usage_max_age_s == 0:
            del self._reads[key]
            return
        assert read is not None
        loop = task.get_loop()
        read.finished_at = loop.time()
        loop.call_later(self.usage_max_age_s, self._forget, key, task)

    def _forget(self, key: _ReadKey, task: asyncio.Task[list[BucketUsage]]) -> None:
        read = self._reads.get(key)
        if read is not None and read.task is task:
            del self._reads[key]

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
