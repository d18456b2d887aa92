"""OpenAI's chat completion answers, unary and streamed (SSE chunks), from an execution."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ...base import ToolCallDelta
from ...decision import ExecutionSummary

_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(summary: ExecutionSummary) -> str:
    if summary.tool_calls:
        return "tool_calls"
    return _FINISH.get(summary.finish_reason, "stop")


def completion_id(summary: ExecutionSummary) -> str:
    return f"chatcmpl-{summary.decision.decision_id}"


def usage(summary: ExecutionSummary) -> dict[str, int]:
    prompt, completion = summary.usage.input_tokens, summary.usage.output_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def router_fields(summary: ExecutionSummary) -> dict[str, Any]:
    """The ``modelrouter`` object added to answers: what the decision was and cost."""
    classification = summary.decision.classification
    return {
        "decision_id": summary.decision.decision_id,
        "provider": summary.provider,
        "cost_usd": summary.cost_usd,
        "latency_ms": round(summary.latency_ms, 3),
        "attempts": len(summary.attempts),
        "complexity": classification.complexity.name.lower(),
        "task_type": classification.task_type.name.lower(),
        "reason": summary.decision.selection.reason,
    }


def completion(summary: ExecutionSummary) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": summary.text if summary.text or not summary.tool_calls else None,
        "refusal": None,
    }
    if summary.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json},
            }
            for c in summary.tool_calls
        ]
    return {
        "id": completion_id(summary),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": summary.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(summary),
                "logprobs": None,
            }
        ],
        "usage": usage(summary),
        "system_fingerprint": None,
        "modelrouter": router_fields(summary),
    }


class ChunkWriter:
    """SSE lines of one streamed answer in OpenAI's ``chat.completion.chunk`` format.

    The answering model is known only at the end (a failover may happen before the first
    delta), so chunks name the model asked for until the last ones, which name the model
    that answered and carry the ``modelrouter`` object with the decision id and cost.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        self.started = False

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "system_fingerprint": None,
        }
        if self.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    def _delta(self, delta: dict[str, Any]) -> bytes:
        if not self.started:
            delta = {"role": "assistant", **delta}
            self.started = True
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}])

    def event(self, event: str | ToolCallDelta) -> bytes:
        if isinstance(event, str):
            return self._delta({"content": event})
        call: dict[str, Any] = {"index": event.index, "function": {"arguments": event.arguments}}
        if event.id is not None:
            call["id"] = event.id
            call["type"] = "function"
        if event.name is not None:
            call["function"]["name"] = event.name
        return self._delta({"tool_calls": [call]})

    def end(self, summary: ExecutionSummary) -> bytes:
        self.model = summary.model
        lines = b""
        if not self.started:
            lines += self._delta({"content": ""})
        lines += self._chunk(
            [{"index": 0, "delta": {}, "finish_reason": finish_reason(summary), "logprobs": None}],
            modelrouter=router_fields(summary),
        )
        if self.include_usage:
            lines += self._chunk([], usage=usage(summary))
        return lines + b"data: [DONE]\n\n"

    @staticmethod
    def error(status: int, body: bytes) -> bytes:
        """An error after the stream started (the SDKs raise it as an APIError)."""
        return b"data: " + body + b"\n\n"
