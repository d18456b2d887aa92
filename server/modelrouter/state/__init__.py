"""Shared state: budgets, the decision and feedback log, adaptive statistics, tenants.

Two interfaces (``HotState`` for contended counters, ``DecisionLog`` for durable records)
with memory, SQLite, Redis and PostgreSQL backends, chosen by ``[storage]``.
"""

from .auth import Authenticator, hash_key
from .budgets import Budgets, Reservation, WindowUsage
from .interfaces import DecisionLog, DecisionRecord, FeedbackRecord, HotState
from .service import StateServices, open_state

__all__ = [
    "Authenticator",
    "Budgets",
    "DecisionLog",
    "DecisionRecord",
    "FeedbackRecord",
    "HotState",
    "Reservation",
    "StateServices",
    "WindowUsage",
    "hash_key",
    "open_state",
]
