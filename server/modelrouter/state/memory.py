"""In-process backends: the default when no ``[storage]`` table is configured.

Everything lives in this one process: nothing survives a restart and nothing is shared
with another process, so two workers (``serve --workers 2``) or two replicas on
``memory`` would each hold their own budget. Use them for tests and single-process
trials. Single-threaded asyncio makes every method atomic (none awaits inside).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace

from .interfaces import (
    IN_FLIGHT,
    TOMBSTONE_TTL_S,
    ArmStats,
    Bucket,
    BucketUsage,
    DecisionLog,
    DecisionRecord,
    ExportRow,
    FeedbackRecord,
    FeedbackWrite,
    HotState,
)

#: Sessions a memory store keeps at most (the least recently used are forgotten first).
MAX_SESSIONS = 100_000


@dataclass(slots=True)
class _Reservation:
    amount: int
    created_at: float
    buckets: tuple[tuple[str, str], ...]
    #: ``held``, ``settled`` or ``reaped``.
    state: str = "held"
    #: When it left ``held``.
    closed_at: float = 0.0
    actual: int = 0
    estimated: bool = False


class MemoryHotState(HotState):
    name = "memory"

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str], list[int]] = {}
        self._arms: dict[str, dict[str, ArmStats]] = {}
        self._reservations: dict[tuple[str, str], _Reservation] = {}
        self._held: dict[str, set[str]] = {}
        self._hits: dict[str, tuple[int, int]] = {}
        #: Session key -> (model, expires at), least recently stuck first.
        self._sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # (closed_at, key) of settled and reaped reservations, oldest first.
        self._closed: deque[tuple[float, tuple[str, str]]] = deque()

    def _counter(self, tenant: str, window: str, label: str) -> list[int]:
        return self._counters.setdefault((tenant, window, label), [0, 0])

    async def reserve(
        self,
        tenant: str,
        attempt_id: str,
        amount: int,
        buckets: Sequence[Bucket],
        *,
        now: float,
        max_in_flight: int,
    ) -> Bucket | None:
        if (tenant, attempt_id) in self._reservations:
            return None
        held = self._held.setdefault(tenant, set())
        if max_in_flight and len(held) >= max_in_flight:
            return IN_FLIGHT
        for bucket in buckets:
            spent, reserved = self._counter(tenant, bucket.window, bucket.label)
            if spent + reserved + amount > bucket.limit:
                return bucket
        for bucket in buckets:
            self._counter(tenant, bucket.window, bucket.label)[1] += amount
        self._reservations[tenant, attempt_id] = _Reservation(
            amount, now, tuple((b.window, b.label) for b in buckets)
        )
        held.add(attempt_id)
        return None

    async def settle(
        self,
        tenant: str,
        attempt_id: str,
        buckets: Sequence[Bucket],
        actual: int,
        *,
        estimated: bool,
        now: float,
    ) -> bool:
        record = self._reservations.get((tenant, attempt_id))
        if record is not None and record.state == "settled":
            return False
        if record is not None and record.state == "held":
            for window, label in record.buckets:
                counter = self._counter(tenant, window, label)
                counter[1] = max(counter[1] - record.amount, 0)
            self._held[tenant].discard(attempt_id)
        if record is None:
            record = _Reservation(0, now, ())
            self._reservations[tenant, attempt_id] = record
        for bucket in buckets:
            self._counter(tenant, bucket.window, bucket.label)[0] += actual
        record.state, record.closed_at = "settled", now
        record.actual, record.estimated = actual, estimated
        self._closed.append((now, (tenant, attempt_id)))
        self._forget_tombstones(now)
        return True

    def _forget_tombstones(self, now: float) -> None:
        """Drop settled and reaped reservations past ``TOMBSTONE_TTL_S`` (amortised O(1),
        so memory stays bounded even when no reaper runs)."""
        forget_before = now - TOMBSTONE_TTL_S
        while self._closed and self._closed[0][0] < forget_before:
            _, key = self._closed.popleft()
            record = self._reservations.get(key)
            # A reaped reservation settled later was queued again; forget it only once.
            if record is not None and record.state != "held" and record.closed_at < forget_before:
                del self._reservations[key]

    async def reap(self, cutoff: float, limit: int, now: float) -> int:
        stale = [
            (tenant, attempt_id)
            for tenant, held in self._held.items()
            for attempt_id in held
            if self._reservations[tenant, attempt_id].created_at < cutoff
        ][:limit]
        for tenant, attempt_id in stale:
            held = self._reservations[tenant, attempt_id]
            for window, label in held.buckets:
                counter = self._counter(tenant, window, label)
                counter[1] = max(counter[1] - held.amount, 0)
            self._held[tenant].discard(attempt_id)
            held.state, held.closed_at = "reaped", now
            self._closed.append((now, (tenant, attempt_id)))
        self._forget_tombstones(now)
        return len(stale)

    async def in_flight(self, tenant: str) -> int:
        return len(self._held.get(tenant, ()))

    async def hit(self, key: str, window_s: int, now: float) -> int:
        window = int(now // window_s)
        start, count = self._hits.get(key, (window, 0))
        count = count + 1 if start == window else 1
        self._hits[key] = (window, count)
        return count

    async def session_model(self, key: str, now: float) -> str | None:
        stuck = self._sessions.get(key)
        if stuck is None or stuck[1] <= now:
            return None
        return stuck[0]

    async def stick_session(self, key: str, model: str, ttl_s: float, now: float) -> None:
        self._sessions[key] = (model, now + ttl_s)
        self._sessions.move_to_end(key)
        # Bounded like everything kept in memory: the oldest sessions go first.
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)

    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        return [BucketUsage(*self._counter(tenant, b.window, b.label)) for b in buckets]

    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        return dict(self._arms.get(key, {}))

    async def record_reward(
        self, key: str, model: str, reward: float, previous: float | None = None
    ) -> None:
        arms = self._arms.setdefault(key, {})
        old = arms.get(model, ArmStats())
        added, delta = (1, reward) if previous is None else (0, reward - previous)
        arms[model] = ArmStats(old.count + added, old.reward_sum + delta)


class MemoryDecisionLog(DecisionLog):
    """Keeps the most recent ``max_decisions`` decisions (and their feedback).

    A long-running server on the in-memory default must not grow without bound; older
    decisions are forgotten, so feedback on them is NOT_FOUND. Use SQLite or PostgreSQL to
    keep everything.
    """

    name = "memory"

    def __init__(self, max_decisions: int = 100_000) -> None:
        self.max_decisions = max_decisions
        # Insertion-ordered: the first key is always the oldest decision.
        self._decisions: dict[str, DecisionRecord] = {}
        self._feedback: dict[str, FeedbackRecord] = {}
        self._sources: dict[str, set[str]] = {}

    def _forget(self, decision_id: str) -> None:
        del self._decisions[decision_id]
        self._feedback.pop(decision_id, None)
        self._sources.pop(decision_id, None)

    async def record(self, decision: DecisionRecord) -> None:
        self._decisions[decision.decision_id] = decision
        while len(self._decisions) > self.max_decisions:
            self._forget(next(iter(self._decisions)))

    async def get(self, decision_id: str) -> DecisionRecord | None:
        return self._decisions.get(decision_id)

    async def add_feedback(self, feedback: FeedbackRecord, max_sources: int) -> FeedbackWrite:
        sources = self._sources.setdefault(feedback.decision_id, set())
        if feedback.source not in sources and len(sources) >= max_sources:
            return FeedbackWrite("too_many_sources")
        previous = self._feedback.get(feedback.decision_id)
        if previous is not None and same_feedback(previous, feedback):
            return FeedbackWrite("unchanged", previous)
        sources.add(feedback.source)
        self._feedback[feedback.decision_id] = feedback
        return FeedbackWrite("created" if previous is None else "replaced", previous)

    async def sweep(self, before: float, limit: int) -> int:
        old = [d.decision_id for d in self._decisions.values() if d.created_at < before]
        old.sort(key=lambda i: self._decisions[i].created_at)
        for decision_id in old[:limit]:
            self._forget(decision_id)
        return min(len(old), limit)

    async def recent(self, tenant: str | None, limit: int) -> list[DecisionRecord]:
        # Newest last in insertion order (decisions are recorded as they are made); walk
        # backwards so the cost is bounded by what is skipped, not by the whole log.
        found: list[DecisionRecord] = []
        for decision in reversed(self._decisions.values()):
            if len(found) >= limit:
                break
            if tenant is None or decision.tenant == tenant:
                found.append(decision)
        found.sort(key=lambda d: d.created_at, reverse=True)
        return found

    async def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        rows = sorted(
            (d for d in self._decisions.values() if d.decision_id in self._feedback),
            key=lambda d: d.created_at,
        )
        for decision in rows:
            if tenant is None or decision.tenant == tenant:
                yield ExportRow(replace(decision), (self._feedback[decision.decision_id],))


def same_feedback(a: FeedbackRecord, b: FeedbackRecord) -> bool:
    """Whether ``b`` repeats ``a`` (a retried submit): same source, score, verdict, comment."""
    return (a.source, a.score, a.success, a.comment) == (b.source, b.score, b.success, b.comment)
