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
    ToolCallAssembler,
    ToolCallDelta,
    Usage,
)
from .errors import ModelUnavailable, ProviderError, RouterError
from .types import (
    CallOptions,
    Classification,
    Complexity,
    Constraints,
    ContentPart,
    Image,
    Message,
    ResponseFormat,
    Role,
    RoutingRequest,
    TaskType,
    Tool,
    ToolCall,
)

hookimpl = pluggy.HookimplMarker("modelrouter")

__all__ = [
    "CallOptions",
    "Classification",
    "Classifier",
    "Completion",
    "CompletionChunk",
    "Complexity",
    "Constraints",
    "ContentPart",
    "Image",
    "Message",
    "ModelUnavailable",
    "PluginContext",
    "Provider",
    "ProviderCall",
    "ProviderError",
    "ProviderSettings",
    "ResponseFormat",
    "Role",
    "RouterError",
    "RoutingRequest",
    "TaskType",
    "Tool",
    "ToolCall",
    "ToolCallAssembler",
    "ToolCallDelta",
    "Usage",
    "hookimpl",
]
