"""The two storage interfaces and the records they hold.

``HotState`` keeps small, contended, shared counters: budget spend and reservations per
tenant and window, and the adaptive policy's per-model statistics. Every operation is
atomic in every backend, so several replicas may share one store.

``DecisionLog`` is the durable record of routing decisions and the feedback on them. A
write that returns has been committed; callers acknowledge only after it returns.

Money crosses these interfaces as integer nano-USD (1e-9 USD), so atomic arithmetic in
Redis Lua, SQLite and PostgreSQL is exact and identical.
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
    "ArmStats",
    "Bucket",
    "BucketUsage",
    "CandidateRecord",
    "DecisionLog",
    "DecisionRecord",
    "ExportRow",
    "FeedbackRecord",
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
    model: str
    estimated_cost_usd: float
    quality: float


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


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    decision_id: str
    tenant: str
    #: Who sent it; (decision_id, source) is unique so repeats are idempotent.
    source: str
    score: float
    success: bool
    comment: str = ""
    created_at: float = 0.0


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
    async def reserve(self, tenant: str, amount: int, buckets: Sequence[Bucket]) -> Bucket | None:
        """Atomically reserve ``amount`` in every bucket, or in none.

        Returns ``None`` on success, else the first bucket where spent + reserved +
        ``amount`` would exceed its limit (nothing is reserved then).
        """

    @abc.abstractmethod
    async def settle(
        self, tenant: str, buckets: Sequence[Bucket], reserved: int, actual: int
    ) -> None:
        """Atomically move a reservation of ``reserved`` to spend of ``actual`` (0: release)."""

    @abc.abstractmethod
    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        """Spend and reservations of each bucket, in order."""

    @abc.abstractmethod
    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        """Adaptive statistics of every model under ``key`` (``complexity:task_type``)."""

    @abc.abstractmethod
    async def record_reward(self, key: str, model: str, reward: float) -> None:
        """Atomically add one observation of ``reward`` in [0, 1] to (``key``, ``model``)."""


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

    @abc.abstractmethod
    async def get(self, decision_id: str) -> DecisionRecord | None:
        """The decision, or ``None`` when unknown."""

    @abc.abstractmethod
    async def add_feedback(self, feedback: FeedbackRecord) -> bool:
        """Commit ``feedback``; ``False`` (and no change) if (decision, source) already has some."""

    @abc.abstractmethod
    def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        """Every decision that has feedback, oldest first, with its feedback."""


def candidates_to_json(candidates: Sequence[CandidateRecord]) -> list[dict[str, object]]:
    return [
        {"model": c.model, "estimated_cost_usd": c.estimated_cost_usd, "quality": c.quality}
        for c in candidates
    ]


def candidates_from_json(data: Sequence[Mapping[str, object]]) -> tuple[CandidateRecord, ...]:
    return tuple(
        CandidateRecord(str(c["model"]), float(c["estimated_cost_usd"]), float(c["quality"]))  # type: ignore[arg-type]
        for c in data
    )


class OwnsDatabase:
    """For backends that own one database handle ``self.db``: they open and close with it."""

    db: Any

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.db.aclose()
