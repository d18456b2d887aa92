"""Failure handling the execute stage relies on: circuit breaking, backoff and deadlines.

The attempt loop itself is :mod:`modelrouter.pipeline.execute`.
"""

from __future__ import annotations

from .circuit import CircuitBreaker, InMemoryCircuitBreaker
from .retry import Backoff, Deadline

__all__ = ["Backoff", "CircuitBreaker", "Deadline", "InMemoryCircuitBreaker"]
