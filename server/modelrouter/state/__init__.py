"""Shared state: budgets, the decision and feedback log, adaptive statistics.

Two interfaces (``HotState`` for contended counters, ``DecisionLog`` for durable records)
with memory, SQLite, Redis and PostgreSQL backends, chosen by ``[storage]``.
"""

from .budgets import Budgets, Reservation, WindowUsage
from .interfaces import DecisionLog, DecisionRecord, FeedbackRecord, HotState
from .service import StateServices, open_state

__all__ = [
    "Budgets",
    "DecisionLog",
    "DecisionRecord",
    "FeedbackRecord",
    "HotState",
    "Reservation",
    "StateServices",
    "WindowUsage",
    "open_state",
]
