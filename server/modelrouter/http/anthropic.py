"""Anthropic's Messages format (``POST /v1/messages``) <-> the router's request and results.

Like :mod:`.openai`, a body becomes an ``ExecuteRequest`` that goes through the gRPC face's
limits and conversion. Anthropic turns map onto the router's: ``system`` becomes a system
turn, each ``tool_result`` block a tool turn (before the rest of its user turn), ``tool_use``
blocks the assistant turn's tool calls. Error paths name the Anthropic message they came
from (``messages[3]``, ``system``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .. import convert, limits
from ..base import ToolCallDelta
from ..decision import ExecutionSummary
from ..errors import FieldViolation, InvalidRequest
from ..v1 import router_pb2 as pb
from .openai import AUTO, ChatRequest, Reader, finish_reason, json_type, router_fields

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
#: HTTP status -> Anthropic error type.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def error_body(status: int, openai_body: bytes) -> bytes:
    """The Anthropic error body for an OpenAI-shaped one (same message)."""
    message = json.loads(openai_body)["error"]["message"]
    kind = ERROR_TYPES.get(status, "api_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def messages_request(body: object, *, tenant: str, input_limits: limits.InputLimits) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest.single("body", f"must be a JSON object, got {json_type(body)}")
    reader = Reader(input_limits.max_image_bytes)
    out = pb.ExecuteRequest()
    #: Proto message index -> the Anthropic path it came from.
    origins: list[str] = []

    model = body.get("model")
    if not isinstance(model, str) or not model:
        reader.bad("model", 'required: "auto" to route, or a catalog model\'s name')
        model = AUTO
    elif model != AUTO:
        out.model = model
    system = body.get("system")
    if system is not None:
        text = _text(reader, system, "system")
        if text:
            out.messages.append(pb.Message(role=pb.ROLE_SYSTEM, content=text))
            origins.append("system")
    messages = body.get("messages")
    if reader.typed(messages, list, "messages", "an array of messages"):
        assert isinstance(messages, list)
        for i, message in enumerate(messages):
            path = f"messages[{i}]"
            if reader.typed(message, dict, path, "an object"):
                for turn in _turns(reader, message, path):
                    out.messages.append(turn)
                    origins.append(path)
    tools = body.get("tools")
    if tools is not None and reader.typed(tools, list, "tools", "an array"):
        assert isinstance(tools, list)
        for i, tool in enumerate(tools):
            if not reader.typed(tool, dict, f"tools[{i}]", "an object"):
                continue
            result = pb.Tool(
                name=str(tool.get("name", "")), description=str(tool.get("description", ""))
            )
            schema = tool.get("input_schema")
            if schema is not None and reader.typed(
                schema, dict, f"tools[{i}].input_schema", "an object"
            ):
                result.parameters_json = json.dumps(schema)
            out.tools.append(result)
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind in ("auto", "none"):
            out.tool_choice = kind
        elif kind == "any":
            out.tool_choice = "required"
        elif kind == "tool" and isinstance(choice.get("name"), str):
            out.tool_choice = choice["name"]
        else:
            reader.bad("tool_choice", 'must be {"type": "auto" | "any" | "none" | "tool", ...}')
    stop = body.get("stop_sequences")
    if stop is not None:
        reader.stop(stop, out)
    for key in ("temperature", "top_p"):
        value = reader.number(body.get(key), key)
        if value is not None:
            setattr(out, key, value)
    tokens = reader.integer(body.get("max_tokens"), "max_tokens")
    if tokens is None:
        reader.bad("max_tokens", "required: the most tokens the answer may have")
    elif not 1 <= tokens <= convert.MAX_OUTPUT_TOKENS_LIMIT:
        reader.bad("max_tokens", f"must be in [1, {convert.MAX_OUTPUT_TOKENS_LIMIT}]")
    else:
        out.constraints.max_output_tokens = tokens
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out.metadata["user"] = metadata["user_id"]
    stream = body.get("stream")
    if stream is not None:
        reader.typed(stream, bool, "stream", "a boolean")
    if reader.violations:
        raise InvalidRequest(reader.violations)
    try:
        limits.check_request(out, input_limits)
        request = convert.request_from_proto(
            out, tenant=tenant, max_image_bytes=input_limits.max_image_bytes
        )
        temperature = convert.temperature(out)
    except InvalidRequest as error:
        raise InvalidRequest(
            [FieldViolation(_path(v.field, origins), v.description) for v in error.violations]
        ) from None
    return ChatRequest(request=request, model=model, temperature=temperature, stream=stream is True)


def _path(field: str, origins: list[str]) -> str:
    if field.startswith("messages[") and "]" in field:
        index, _, rest = field[len("messages[") :].partition("]")
        if index.isdigit() and int(index) < len(origins):
            return origins[int(index)] + rest
    return field.replace("constraints.max_output_tokens", "max_tokens")


def _text(reader: Reader, value: object, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, block in enumerate(value):
            if isinstance(block, dict) and block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            else:
                reader.bad(f"{path}[{j}]", "only text blocks are accepted here")
        return "\n".join(texts)
    reader.bad(path, f"must be a string or an array of text blocks, got {json_type(value)}")
    return ""


def _turns(reader: Reader, message: dict[str, Any], path: str) -> list[pb.Message]:
    role = message.get("role")
    if role not in ("user", "assistant"):
        reader.bad(f"{path}.role", "valid: user, assistant")
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [
            pb.Message(role=pb.ROLE_USER if role == "user" else pb.ROLE_ASSISTANT, content=content)
        ]
    if not reader.typed(content, list, f"{path}.content", "a string or an array of blocks"):
        return []
    assert isinstance(content, list)
    tools: list[pb.Message] = []
    turn = pb.Message(role=pb.ROLE_USER if role == "user" else pb.ROLE_ASSISTANT)
    for j, block in enumerate(content):
        where = f"{path}.content[{j}]"
        if not reader.typed(block, dict, where, "an object"):
            continue
        kind = block.get("type")
        if kind == "text":
            turn.parts.append(pb.ContentPart(text=str(block.get("text", ""))))
        elif kind == "image" and role == "user":
            source = block.get("source")
            if not isinstance(source, dict):
                reader.bad(f"{where}.source", "must be an object")
            elif source.get("type") == "url":
                turn.parts.append(pb.ContentPart(image=pb.Image(url=str(source.get("url", "")))))
            elif source.get("type") == "base64":
                media = str(source.get("media_type", ""))
                image = reader.image(
                    f"data:{media};base64,{source.get('data', '')}", f"{where}.source"
                )
                if image is not None:
                    turn.parts.append(pb.ContentPart(image=image))
            else:
                reader.bad(f"{where}.source.type", "valid: base64, url")
        elif kind == "tool_use" and role == "assistant":
            turn.tool_calls.append(
                pb.ToolCall(
                    id=str(block.get("id", "")),
                    name=str(block.get("name", "")),
                    arguments_json=json.dumps(block.get("input", {})),
                )
            )
        elif kind == "tool_result" and role == "user":
            result = block.get("content", "")
            text = _text(reader, result, f"{where}.content") if result else ""
            tools.append(
                pb.Message(
                    role=pb.ROLE_TOOL, content=text, tool_call_id=str(block.get("tool_use_id", ""))
                )
            )
        else:
            reader.bad(f"{where}.type", f"{json.dumps(kind)[:40]} is not accepted in a {role} turn")
    if len(turn.parts) == 1 and not turn.tool_calls:
        turn.content, turn.parts[:] = turn.parts[0].text, []  # a plain text turn
    elif not turn.parts and turn.tool_calls:
        pass
    keep = bool(turn.parts or turn.content or turn.tool_calls)
    return [*tools, turn] if keep else tools


def message(summary: ExecutionSummary) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if summary.text:
        content.append({"type": "text", "text": summary.text})
    for call in summary.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": json.loads(call.arguments_json or "{}"),
            }
        )
    return {
        "id": f"msg_{summary.decision.decision_id}",
        "type": "message",
        "role": "assistant",
        "model": summary.model,
        "content": content,
        "stop_reason": _STOP.get(finish_reason(summary), "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": summary.usage.input_tokens,
            "output_tokens": summary.usage.output_tokens,
        },
        "modelrouter": router_fields(summary),
    }


class EventWriter:
    """Anthropic SSE events of one streamed answer (``message_start`` ... ``message_stop``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.text_block: int | None = None
        #: Tool call index -> content block index.
        self.tool_blocks: dict[int, int] = {}
        self.blocks = 0

    @staticmethod
    def _event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self._event(
            "message_start",
            {
                "message": {
                    "id": f"msg_{uuid.uuid4().hex}",
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                }
            },
        )

    def event(self, event: str | ToolCallDelta) -> bytes:
        out = self._start()
        if isinstance(event, str):
            if self.text_block is None:
                self.text_block = self.blocks
                self.blocks += 1
                out += self._event(
                    "content_block_start",
                    {"index": self.text_block, "content_block": {"type": "text", "text": ""}},
                )
            return out + self._event(
                "content_block_delta",
                {"index": self.text_block, "delta": {"type": "text_delta", "text": event}},
            )
        block = self.tool_blocks.get(event.index)
        if block is None:
            block = self.tool_blocks[event.index] = self.blocks
            self.blocks += 1
            out += self._event(
                "content_block_start",
                {
                    "index": block,
                    "content_block": {
                        "type": "tool_use",
                        "id": event.id or "",
                        "name": event.name or "",
                        "input": {},
                    },
                },
            )
        if event.arguments:
            out += self._event(
                "content_block_delta",
                {
                    "index": block,
                    "delta": {"type": "input_json_delta", "partial_json": event.arguments},
                },
            )
        return out

    def end(self, summary: ExecutionSummary) -> bytes:
        out = self._start()
        for block in range(self.blocks):
            out += self._event("content_block_stop", {"index": block})
        out += self._event(
            "message_delta",
            {
                "delta": {
                    "stop_reason": _STOP.get(finish_reason(summary), "end_turn"),
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": summary.usage.output_tokens},
                "modelrouter": {**router_fields(summary), "model": summary.model},
            },
        )
        return out + self._event("message_stop", {})

    def error(self, status: int, openai_body: bytes) -> bytes:
        body = json.loads(error_body(status, openai_body))
        return self._event("error", {"error": body["error"]})
