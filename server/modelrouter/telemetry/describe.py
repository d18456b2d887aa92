"""Span attributes describing a classification, a decision and a conversation.

Built from the domain values only when a span records (an unsampled span is never
described), and in one place so that every span says the same thing the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, Status, StatusCode

from ..errors import is_server_fault
from . import attributes as a

if TYPE_CHECKING:
    from ..decision import Decision
    from ..types import Classification, Message, RoutingRequest


def mark_error(span: Span, exc: BaseException) -> None:
    """``error.type`` is the exception class; status ERROR only for server faults."""
    span.set_attribute(a.ERROR_TYPE, type(exc).__name__)
    if is_server_fault(exc):
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def classification_attributes(c: Classification) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        a.CLASSIFIER: c.classifier,
        a.COMPLEXITY: c.complexity.name.lower(),
        a.TASK_TYPE: c.task_type.name.lower(),
        a.SCORE: float(c.score),
        a.CONFIDENCE: float(c.confidence),
    }
    if c.router_version:
        attributes[a.ROUTER_VERSION] = c.router_version
    return attributes


def decision_attributes(request: RoutingRequest, decision: Decision) -> dict[str, Any]:
    selection = decision.selection
    selected = selection.selected
    return {
        a.DECISION_ID: decision.decision_id,
        a.TENANT: request.tenant,
        **classification_attributes(decision.classification),
        a.SELECTED_MODEL: selected.model.name,
        a.SELECTED_PROVIDER: selected.model.provider,
        a.CANDIDATES: [c.model.name for c in selection.candidates],
        a.CANDIDATE_COUNT: len(selection.candidates),
        a.REASON: selection.reason,
        a.ESTIMATED_COST_USD: selected.estimated_cost_usd,
        a.ESTIMATED_LATENCY_MS: selected.estimated_latency_ms,
        a.ESTIMATED_INPUT_TOKENS: selection.input_tokens,
    }


def messages_json(messages: Sequence[Message]) -> str:
    """Messages in the GenAI conventions' ``gen_ai.input.messages`` shape."""
    return json.dumps(
        [
            {"role": m.role.value, "parts": [{"type": "text", "content": m.content}]}
            for m in messages
        ]
    )


def output_json(text: str, finish_reason: str) -> str:
    """An answer in the GenAI conventions' ``gen_ai.output.messages`` shape."""
    return json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": text}],
                "finish_reason": finish_reason,
            }
        ]
    )
