"""The two storage interfaces and the records they hold.

``HotState`` keeps small, contended, shared counters: budget spend and reservations per
tenant and window, and the adaptive policy's per-model statistics. Every operation is
atomic in every backend, so several replicas may share one store (except `memory`, which
lives in one process and is shared with nothing).

``DecisionLog`` is the durable record of routing decisions and the feedback on them. A
write that returns has been committed; callers acknowledge only after it returns. The
server wraps a durable log in :class:`~modelrouter.state.batching.BatchedDecisionLog`,
whose ``record`` returns once the row is buffered (visible to ``get``) and commits it in a
group shortly after; feedback is still committed before it returns.

Money crosses these interfaces as integer nano-USD (1e-9 USD), so atomic arithmetic in
Redis Lua, SQLite and PostgreSQL is exact and identical.

Reservations are keyed by an attempt id the caller chooses. Reserve and settle are
idempotent per (tenant, attempt id): a retry after a lost reply changes nothing. A
reservation moves from *held* to *settled* (by settle) or *reaped* (by ``reap``, when its
holder vanished); the settled and reaped records are kept ``tombstone_ttl_s`` so late
retries still find them. A settle after a reap still records the spend: money the
provider billed is never dropped.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import StorageUnavailable

if TYPE_CHECKING:
    from ..execution.circuit import CircuitBreaker

__all__ = [
    "IN_FLIGHT",
    "ArmStats",
    "Bucket",
    "BucketUsage",
    "CandidateRecord",
    "DecisionLog",
    "DecisionRecord",
    "ExportRow",
    "FeedbackRecord",
    "FeedbackWrite",
    "HotState",
    "StorageUnavailable",
    "to_nano",
    "to_usd",
]

NANO_USD = 1_000_000_000


def to_nano(usd: float) -> int:
    """USD -> nano-USD, rounded up so reservations never under-reserve."""
    return int(-(-round(usd * NANO_USD * 1000) // 1000))


def to_usd(nano: int) -> float:
    return nano / NANO_USD


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget window instance, e.g. tenant ``acme``'s day ``2024-05-01`` (UTC)."""

    #: ``hour``, ``day`` or ``month``.
    window: str
    #: Label of the instance of the window, e.g. ``2024-05-01T13`` for an hour.
    label: str
    #: Spend limit of the window, nano-USD.
    limit: int
    #: Seconds the counters must outlive the window (for stores that expire keys).
    ttl_s: int


#: What ``HotState.reserve`` returns when the tenant's in-flight cap refused the reserve.
IN_FLIGHT = Bucket("in_flight", "", 0, 0)

#: How long settled and reaped reservations are remembered for idempotent retries.
TOMBSTONE_TTL_S = 3_600


@dataclass(frozen=True, slots=True)
class BucketUsage:
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What feedback said about one model for one (complexity, task type)."""

    count: int = 0
    #: Sum of rewards in [0, 1].
    reward_sum: float = 0.0


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """A model the decision weighed: a candidate with its estimates, or (``excluded``
    set) one a routing rule removed, with the rule and what the model lacked."""

    model: str
    estimated_cost_usd: float
    quality: float
    estimated_latency_ms: float = 0.0
    excluded: str = ""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One logged Route or Execute decision."""

    decision_id: str
    tenant: str
    #: Seconds since the epoch (UTC).
    created_at: float
    #: ``route`` or ``execute``.
    kind: str
    complexity: str
    task_type: str
    classifier: str
    candidates: tuple[CandidateRecord, ...]
    chosen_model: str
    estimated_cost_usd: float
    reason: str
    #: Whether the adaptive policy explored (chose other than its best estimate).
    explored: bool = False
    #: The last user turn, only when the operator opted in (``storage.log_prompts``).
    prompt: str | None = None
    actual_cost_usd: float | None = None
    latency_ms: float | None = None
    #: ``routed`` for Route; ``ok`` / ``error`` / ``rejected`` for Execute.
    outcome: str = "routed"
    #: Version of the trained router that classified the request ("" when none did).
    router_version: str = ""


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    decision_id: str
    tenant: str
    #: Who sent it. A decision keeps one feedback (the latest, whatever its source); the
    #: distinct sources that ever sent one are bounded.
    source: str
    score: float
    success: bool
    comment: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FeedbackWrite:
    """What ``DecisionLog.add_feedback`` did."""

    #: ``created`` (first feedback on the decision), ``replaced`` (a later one replaced
    #: ``previous``), ``unchanged`` (the same feedback again: nothing written) or
    #: ``too_many_sources`` (a new source beyond the bound: nothing written).
    status: str
    #: The feedback that counted before this write, when there was one.
    previous: FeedbackRecord | None = None

    @property
    def changed(self) -> bool:
        return self.status in ("created", "replaced")


@dataclass(frozen=True, slots=True)
class ExportRow:
    decision: DecisionRecord
    feedback: tuple[FeedbackRecord, ...] = field(default_factory=tuple)


class HotState(abc.ABC):
    """Atomic shared counters. See the module docstring."""

    #: Backend name for logs and benchmarks.
    name: str = "abstract"

    async def open(self) -> None:  # noqa: B027 - optional: memory stores have nothing to open
        """Connect and create what is missing. Raises ``StorageUnavailable`` when unreachable."""

    async def aclose(self) -> None:  # noqa: B027 - optional, like open
        """Release connections (and stop the circuit breakers this store started)."""

    async def circuit_breaker(
        self, failure_threshold: int, cooldown_s: float
    ) -> CircuitBreaker | None:
        """A started circuit breaker whose state every replica on this store shares, or
        ``None`` when the store cannot share one (the executor then keeps its own)."""
        return None

    @abc.abstractmethod
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
        """Atomically reserve ``amount`` in every bucket for ``attempt_id``, or in none.

        Returns ``None`` on success, and when ``attempt_id`` was already reserved (or
        settled, or reaped): nothing changes then. Returns ``IN_FLIGHT`` when the tenant
        already holds ``max_in_flight`` reservations (0: no cap), else the first bucket
        where spent + reserved + ``amount`` would exceed its limit; nothing is reserved.
        """

    @abc.abstractmethod
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
        """Atomically turn ``attempt_id``'s reservation into spend of ``actual`` (0: release).

        ``actual`` may exceed what was reserved; it is recorded in full. A held reservation
        is released from the buckets it was made in; a reaped or unknown one only adds the
        spend to ``buckets``. Returns ``False`` (and changes nothing) when it was already
        settled.
        """

    @abc.abstractmethod
    async def reap(self, cutoff: float, limit: int, now: float) -> int:
        """Release up to ``limit`` reservations still held that were made before ``cutoff``
        (seconds since the epoch), and forget tombstones older than ``TOMBSTONE_TTL_S``.
        Returns how many reservations were released; call again while it returns ``limit``."""

    @abc.abstractmethod
    async def in_flight(self, tenant: str) -> int:
        """Reservations ``tenant`` holds now."""

    @abc.abstractmethod
    async def hit(self, key: str, window_s: int, now: float) -> int:
        """Count one event under ``key`` in the current fixed window of ``window_s`` seconds
        and return the window's count so far (this one included)."""

    @abc.abstractmethod
    async def session_model(self, key: str, now: float) -> str | None:
        """The model session ``key`` sticks to, or ``None`` when unknown or expired."""

    @abc.abstractmethod
    async def stick_session(self, key: str, model: str, ttl_s: float, now: float) -> None:
        """Make session ``key`` stick to ``model`` for ``ttl_s`` seconds from ``now``."""

    @abc.abstractmethod
    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        """Spend and reservations of each bucket, in order."""

    @abc.abstractmethod
    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        """Adaptive statistics of every model under ``key`` (``complexity:task_type``)."""

    @abc.abstractmethod
    async def record_reward(
        self, key: str, model: str, reward: float, previous: float | None = None
    ) -> None:
        """Atomically add one observation of ``reward`` in [0, 1] to (``key``, ``model``), or,
        with ``previous``, replace an observation of ``previous`` by ``reward``."""


class DecisionLog(abc.ABC):
    """Durable decisions and feedback. See the module docstring."""

    name: str = "abstract"

    async def open(self) -> None:  # noqa: B027 - optional: memory stores have nothing to open
        """Connect and create the schema. Raises ``StorageUnavailable`` when unreachable."""

    async def aclose(self) -> None:  # noqa: B027 - optional, like open
        """Release connections."""

    @abc.abstractmethod
    async def record(self, decision: DecisionRecord) -> None:
        """Commit ``decision`` (insert, or replace one with the same id)."""

    async def record_many(self, decisions: Sequence[DecisionRecord]) -> None:
        """Commit every decision of ``decisions`` (the group commit of
        :mod:`.batching`): in one transaction, all or none, where the store has them."""
        for decision in decisions:
            await self.record(decision)

    @abc.abstractmethod
    async def get(self, decision_id: str) -> DecisionRecord | None:
        """The decision, or ``None`` when unknown."""

    @abc.abstractmethod
    async def add_feedback(self, feedback: FeedbackRecord, max_sources: int) -> FeedbackWrite:
        """Commit ``feedback`` as the decision's one feedback, replacing any earlier one.

        Atomic per decision. At most ``max_sources`` distinct sources may ever send feedback
        on one decision; a new source past that is refused (nothing written).
        """

    @abc.abstractmethod
    async def sweep(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` of the oldest decisions made before ``before`` (seconds since
        the epoch), with their feedback. Returns how many; call again while it returns
        ``limit``."""

    @abc.abstractmethod
    def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        """Every decision that has feedback, oldest first, with its (one) feedback."""

    @abc.abstractmethod
    async def recent(self, tenant: str | None, limit: int) -> list[DecisionRecord]:
        """The ``limit`` most recent decisions, newest first: ``tenant``'s only, or every
        tenant's with ``None``. Served by the ``(tenant, created_at)`` and ``created_at``
        indexes; the dashboard's "recent decisions"."""


def candidates_to_json(candidates: Sequence[CandidateRecord]) -> list[dict[str, object]]:
    return [
        {"model": c.model, "excluded": c.excluded}
        if c.excluded
        else {
            "model": c.model,
            "estimated_cost_usd": c.estimated_cost_usd,
            "quality": c.quality,
            "estimated_latency_ms": c.estimated_latency_ms,
        }
        for c in candidates
    ]


def candidates_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[CandidateRecord, ...]:
    # Rows written before latency and exclusions were kept have neither.
    return tuple(
        CandidateRecord(
            str(c["model"]),
            float(c.get("estimated_cost_usd", 0.0)),
            float(c.get("quality", 0.0)),
            float(c.get("estimated_latency_ms", 0.0)),
            str(c.get("excluded", "")),
        )
        for c in data
    )


class OwnsDatabase:
    """For backends that own one database handle ``self.db``: they open and close with it."""

    db: Any

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.db.aclose()
