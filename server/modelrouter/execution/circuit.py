"""Per-model circuit breaking: after N consecutive failures a model cools down.

The executor talks to a :class:`CircuitBreaker`; :class:`InMemoryCircuitBreaker` keeps the
state in this process. A shared implementation (for example Redis, so that replicas learn
from each other) keeps :meth:`CircuitBreaker.open_reason` synchronous and cheap by reading a
local view it refreshes in the background, and writes through the async ``record_*`` calls.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Failure classes that say something about a model's health. Bad requests and context
#: overflows are the request's fault, so they never open a circuit.
HEALTH_FAILURES = frozenset(
    {"rate_limit", "server_error", "timeout", "connection", "malformed_response", "auth"}
)


class CircuitBreaker(abc.ABC):
    """Tracks consecutive failures per model and says which models are cooling down."""

    @abc.abstractmethod
    def open_reason(self, model: str) -> str | None:
        """Why ``model`` must be skipped now (its circuit is open), or ``None``. Never blocks."""

    @abc.abstractmethod
    async def record_success(self, model: str) -> None:
        """A call to ``model`` succeeded: close its circuit and reset its failure count."""

    @abc.abstractmethod
    async def record_failure(self, model: str, error_type: str) -> None:
        """A call to ``model`` failed with ``error_type`` (a ``ProviderError.kind``)."""


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0
    last_error: str = ""


class InMemoryCircuitBreaker(CircuitBreaker):
    """Opens a model's circuit after ``failure_threshold`` consecutive health failures.

    The circuit stays open ``cooldown_s`` seconds; then one call is let through (half-open).
    If that call fails the model cools down again at once; if it succeeds it closes.
    """

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}

    def open_reason(self, model: str) -> str | None:
        state = self._states.get(model)
        if state is None:
            return None
        left = state.open_until - self._clock()
        if left <= 0:
            return None
        return (
            f"circuit open after {state.failures} consecutive failures "
            f"(last: {state.last_error}); retrying in {left:.1f} s"
        )

    async def record_success(self, model: str) -> None:
        self._states.pop(model, None)

    async def record_failure(self, model: str, error_type: str) -> None:
        if error_type not in HEALTH_FAILURES:
            return
        state = self._states.setdefault(model, _State())
        state.failures += 1
        state.last_error = error_type
        if state.failures >= self.failure_threshold:
            state.open_until = self._clock() + self.cooldown_s
