"""In-process backends: the default when no ``[storage]`` table is configured.

Nothing survives a restart and nothing is shared between processes; use them for tests
and single-process trials. Single-threaded asyncio makes every method atomic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace

from .interfaces import (
    ArmStats,
    Bucket,
    BucketUsage,
    DecisionLog,
    DecisionRecord,
    ExportRow,
    FeedbackRecord,
    HotState,
)


class MemoryHotState(HotState):
    name = "memory"

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str], list[int]] = {}
        self._arms: dict[str, dict[str, ArmStats]] = {}

    def _counter(self, tenant: str, bucket: Bucket) -> list[int]:
        return self._counters.setdefault((tenant, bucket.window, bucket.label), [0, 0])

    async def reserve(self, tenant: str, amount: int, buckets: Sequence[Bucket]) -> Bucket | None:
        for bucket in buckets:
            spent, reserved = self._counter(tenant, bucket)
            if spent + reserved + amount > bucket.limit:
                return bucket
        for bucket in buckets:
            self._counter(tenant, bucket)[1] += amount
        return None

    async def settle(
        self, tenant: str, buckets: Sequence[Bucket], reserved: int, actual: int
    ) -> None:
        for bucket in buckets:
            counter = self._counter(tenant, bucket)
            counter[0] += actual
            counter[1] = max(counter[1] - reserved, 0)

    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        return [BucketUsage(*self._counter(tenant, b)) for b in buckets]

    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        return dict(self._arms.get(key, {}))

    async def record_reward(self, key: str, model: str, reward: float) -> None:
        arms = self._arms.setdefault(key, {})
        old = arms.get(model, ArmStats())
        arms[model] = ArmStats(old.count + 1, old.reward_sum + reward)


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
        self._feedback: dict[str, dict[str, FeedbackRecord]] = {}

    async def record(self, decision: DecisionRecord) -> None:
        self._decisions[decision.decision_id] = decision
        while len(self._decisions) > self.max_decisions:
            oldest = next(iter(self._decisions))
            del self._decisions[oldest]
            self._feedback.pop(oldest, None)

    async def get(self, decision_id: str) -> DecisionRecord | None:
        return self._decisions.get(decision_id)

    async def add_feedback(self, feedback: FeedbackRecord) -> bool:
        by_source = self._feedback.setdefault(feedback.decision_id, {})
        if feedback.source in by_source:
            return False
        by_source[feedback.source] = feedback
        return True

    async def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        rows = sorted(
            (d for d in self._decisions.values() if d.decision_id in self._feedback),
            key=lambda d: d.created_at,
        )
        for decision in rows:
            if tenant is None or decision.tenant == tenant:
                feedback = tuple(self._feedback[decision.decision_id].values())
                yield ExportRow(replace(decision), feedback)
