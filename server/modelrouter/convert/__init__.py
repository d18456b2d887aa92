"""Translation between protobuf messages and domain types, at the edge of the server.

:mod:`.requests` turns requests into domain types, validating every field;
:mod:`.responses` turns results into responses. Nothing below the faces imports this.
"""

from .requests import (
    DEFAULT_MAX_IMAGE_BYTES,
    MAX_OUTPUT_TOKENS_LIMIT,
    RequestProto,
    request_from_proto,
    routing_request,
    temperature,
)
from .responses import (
    attempt_message,
    candidate_message,
    classification_message,
    execute_failure,
    execute_response,
    model_message,
    plugin_message,
    stats_message,
    stream_message,
    tool_call_delta_message,
    tool_call_messages,
    usage_message,
)

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "MAX_OUTPUT_TOKENS_LIMIT",
    "RequestProto",
    "attempt_message",
    "candidate_message",
    "classification_message",
    "execute_failure",
    "execute_response",
    "model_message",
    "plugin_message",
    "request_from_proto",
    "routing_request",
    "stats_message",
    "stream_message",
    "temperature",
    "tool_call_delta_message",
    "tool_call_messages",
    "usage_message",
]
