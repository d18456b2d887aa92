"""OpenAI's chat completions format: :mod:`.request` reads a body into the router's
request, :mod:`.response` writes answers and stream chunks."""

from .request import AUTO, ChatRequest, Reader, chat_request, json_type
from .response import ChunkWriter, completion, completion_id, finish_reason, router_fields, usage

__all__ = [
    "AUTO",
    "ChatRequest",
    "ChunkWriter",
    "Reader",
    "chat_request",
    "completion",
    "completion_id",
    "finish_reason",
    "json_type",
    "router_fields",
    "usage",
]
