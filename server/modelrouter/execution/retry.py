"""Backoff and deadlines of the one retry loop (the SDKs' own retries are turned off).

Plain, clock-injectable objects so that tests drive them without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff that honours an upstream's Retry-After.

    Retry ``n`` (0-based) waits ``uniform(0, min(max_s, base_s * 2**n))`` seconds, or exactly
    the Retry-After the upstream sent. A Retry-After longer than ``max_s`` returns ``None``:
    waiting that long would hold the caller, so the loop moves to the next fallback instead.
    """

    base_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int, retry_after_s: float | None = None) -> float | None:
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= self.max_s else None
        return self.rng.uniform(0.0, min(self.max_s, self.base_s * (2**retry)))


class Deadline:
    """The earlier of the caller's gRPC deadline and the server's request timeout."""

    def __init__(
        self,
        timeout_s: float | None,
        cap_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        budget = cap_s if timeout_s is None else min(timeout_s, cap_s)
        self.started = clock()
        self.at = self.started + budget

    def remaining(self) -> float:
        """Seconds left; zero or less once the deadline has passed."""
        return self.at - self._clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def elapsed_ms(self) -> float:
        return (self._clock() - self.started) * 1000.0
