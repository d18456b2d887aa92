"""Execution: calling the chosen model with retries, failover and circuit breaking.

Plain objects, testable without gRPC: :class:`Executor` runs a routing decision,
:func:`decide` makes one (honouring an explicit model), :mod:`.upstream` holds the error
translation helpers that provider plugins share.
"""

from __future__ import annotations

from .circuit import CircuitBreaker, InMemoryCircuitBreaker
from .executor import Executor
from .listeners import AttemptInfo, ExecutionListener
from .planning import decide
from .results import AttemptRecord, ExecutionSummary
from .retry import Backoff, Deadline

__all__ = [
    "AttemptInfo",
    "AttemptRecord",
    "Backoff",
    "CircuitBreaker",
    "Deadline",
    "ExecutionListener",
    "ExecutionSummary",
    "Executor",
    "InMemoryCircuitBreaker",
    "decide",
]
