"""modelrouter: send each LLM request to the cheapest model that will answer it well.

Everything a plugin author needs is importable from here.
"""

from __future__ import annotations

import pluggy

from .base import (
    Classifier,
    Completion,
    CompletionChunk,
    PluginContext,
    Provider,
    ProviderCall,
    ProviderSettings,
    Usage,
)
from .errors import ModelUnavailable, ProviderError, RouterError
from .types import (
    Classification,
    Complexity,
    Constraints,
    Message,
    Role,
    RoutingRequest,
    TaskType,
)

hookimpl = pluggy.HookimplMarker("modelrouter")

__all__ = [
    "Classification",
    "Classifier",
    "Completion",
    "CompletionChunk",
    "Complexity",
    "Constraints",
    "Message",
    "ModelUnavailable",
    "PluginContext",
    "Provider",
    "ProviderCall",
    "ProviderError",
    "ProviderSettings",
    "Role",
    "RouterError",
    "RoutingRequest",
    "TaskType",
    "Usage",
    "hookimpl",
]
