"""Recent traffic over time, in fixed buckets: what the dashboard's charts draw.

A ring of the last ``capacity`` buckets of ``bucket_s`` seconds each (by default two hours
of minutes). Each holds the calls that ended in it, their outcomes, the money spent and the
estimated saving against the strongest model. Memory is fixed; adding is O(1) amortised;
buckets with no traffic are not stored (readers fill the gaps).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class TimeBucket:
    #: Start of the bucket, seconds since the epoch.
    start: float
    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    cost_usd: float = 0.0
    #: Estimated cost of the chosen models, and of the strongest eligible ones (USD).
    estimated_cost_usd: float = 0.0
    strongest_estimated_cost_usd: float = 0.0
    fallbacks: int = 0


class Timeline:
    """The last ``capacity`` buckets of ``bucket_s`` seconds. Not thread-safe (one loop)."""

    def __init__(self, bucket_s: float = 60.0, capacity: int = 120) -> None:
        self.bucket_s = bucket_s
        self.capacity = capacity
        self._buckets: deque[TimeBucket] = deque(maxlen=capacity)

    def at(self, now: float) -> TimeBucket:
        """The bucket ``now`` falls in (created when it is newer than the last one)."""
        start = now - now % self.bucket_s
        buckets = self._buckets
        if buckets and buckets[-1].start >= start:
            # Clocks may step back a little: count it in the newest bucket, never reorder.
            return buckets[-1]
        bucket = TimeBucket(start)
        buckets.append(bucket)
        return bucket

    def buckets(self, now: float) -> list[TimeBucket]:
        """Every bucket of the last ``capacity * bucket_s`` seconds up to ``now``, oldest
        first, empty ones included (copies)."""
        first = now - now % self.bucket_s - (self.capacity - 1) * self.bucket_s
        stored = {b.start: b for b in self._buckets if b.start >= first}
        result = []
        for i in range(self.capacity):
            start = first + i * self.bucket_s
            b = stored.get(start)
            result.append(
                TimeBucket(
                    start,
                    b.requests,
                    b.client_errors,
                    b.server_errors,
                    b.cost_usd,
                    b.estimated_cost_usd,
                    b.strongest_estimated_cost_usd,
                    b.fallbacks,
                )
                if b is not None
                else TimeBucket(start)
            )
        return result
