"""Protobuf requests to domain types, with structural validation.

Structural checks (required fields, ranges, enum values, tool and image rules) happen
here; checks that need the catalog or the plugins (unknown model, classifier or provider
names) happen in the pipeline's validate stage. Both raise ``InvalidRequest`` listing
every bad field at once. ``modelrouter.limits`` bounds the sizes first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..errors import FieldViolation, InvalidRequest
from ..types import (
    IMAGE_MEDIA_TYPES,
    NO_OPTIONS,
    CallOptions,
    Constraints,
    ContentPart,
    Image,
    Message,
    ResponseFormat,
    Role,
    RoutingRequest,
    Tool,
    ToolCall,
)
from ..v1 import router_pb2 as pb

_ROLES = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
    pb.ROLE_TOOL: Role.TOOL,
}
_ROLE_CHOICES = "ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL"
MAX_OUTPUT_TOKENS_LIMIT = 1_000_000
#: Default of ``[limits] max_image_bytes`` (20 MiB).
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Most stop sequences a request may give (OpenAI's limit; the strictest provider's).
MAX_STOP_SEQUENCES = 4
MAX_SESSION_ID_CHARS = 128
#: Deepest nesting of arrays and objects accepted in JSON fields (schemas nest a few levels).
MAX_JSON_DEPTH = 64
_TOOL_CHOICE_MODES = ("auto", "none", "required")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Valid tool names listed in an error, at most (the rest elided).
_LISTED_CHOICES = 10
_MEDIA_TYPES = ", ".join(IMAGE_MEDIA_TYPES)
_NO_ARGUMENTS: Mapping[str, Any] = MappingProxyType({"type": "object", "properties": {}})

RequestProto = pb.ClassifyRequest | pb.RouteRequest | pb.ExecuteRequest


def routing_request(
    messages: Sequence[pb.Message],
    constraints: pb.Constraints,
    *,
    model: str = "",
    tenant: str = "default",
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> RoutingRequest:
    """The domain request for a conversation and constraints (no tools or options)."""
    violations: list[FieldViolation] = []
    domain_messages = _messages(messages, violations, max_image_bytes)
    domain_constraints = _constraints(constraints, violations)
    if violations:
        raise InvalidRequest(violations)
    return RoutingRequest(
        messages=domain_messages,
        constraints=domain_constraints,
        tenant=tenant,
        model=model or None,
    )


def request_from_proto(
    request: RequestProto,
    *,
    tenant: str = "default",
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> RoutingRequest:
    """The domain request of a Classify, Route or Execute request, every field validated.

    Raises ``InvalidRequest`` listing every bad field (``messages[3].tool_call_id``,
    ``tools[1].parameters_json``, ...). Run ``limits.check_request`` first: this walks
    every message, part and tool once (linear in the request's size) and trusts that
    the repeated fields are bounded.
    """
    violations: list[FieldViolation] = []
    messages = _messages(request.messages, violations, max_image_bytes)
    constraints = _constraints(request.constraints, violations)
    options = NO_OPTIONS
    session_id: str | None = None
    metadata: Mapping[str, str] = MappingProxyType({})
    model: str | None = None
    if isinstance(request, pb.RouteRequest | pb.ExecuteRequest):
        options = _options(request, violations)
        session_id = _session_id(request.session_id, violations)
    if isinstance(request, pb.ExecuteRequest):
        model = request.model or None
        metadata = _metadata(request.metadata, violations)
    if violations:
        raise InvalidRequest(violations)
    return RoutingRequest(
        messages=messages,
        constraints=constraints,
        tenant=tenant,
        model=model,
        options=options,
        session_id=session_id,
        metadata=metadata,
    )


def _role_name(value: int) -> str:
    return pb.Role.Name(value) if value in pb.Role.values() else str(value)  # type: ignore[arg-type]


def _json_object(text: str, path: str, violations: list[FieldViolation]) -> dict[str, Any] | None:
    """``text`` parsed as a JSON object, or ``None`` with a violation naming ``path``."""
    try:
        value = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and invalid UTF-8 surrogates
        violations.append(FieldViolation(path, f"invalid JSON: {exc}"))
        return None
    except RecursionError:  # "[[[[..." far deeper than any schema or argument object
        value = None
        too_deep = True
    else:
        too_deep = _deeper_than(value, MAX_JSON_DEPTH)
    if too_deep:
        # Deep values would fail later, when encoded for a span or an upstream request.
        violations.append(
            FieldViolation(path, f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        )
        return None
    if not isinstance(value, dict):
        violations.append(
            FieldViolation(path, f"must be a JSON object, got a JSON {type(value).__name__}")
        )
        return None
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Whether a parsed JSON value nests more than ``limit`` arrays/objects; iterative and
    linear in its size."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _messages(
    messages: Sequence[pb.Message], violations: list[FieldViolation], max_image_bytes: int
) -> tuple[Message, ...]:
    if not messages:
        violations.append(
            FieldViolation("messages", "at least one message is required; the last from ROLE_USER")
        )
        return ()
    result = []
    # Ids of the tool calls made so far: a tool turn must answer one of them.
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        role = _ROLES.get(message.role)
        if role is None:
            violations.append(
                FieldViolation(
                    f"{path}.role", f"got {_role_name(message.role)}; valid: {_ROLE_CHOICES}"
                )
            )
            continue
        parts: tuple[ContentPart, ...] = ()
        if message.parts:
            if message.content:
                violations.append(
                    FieldViolation(f"{path}.parts", "set either content or parts, not both")
                )
            parts = _parts(message.parts, role, path, violations, max_image_bytes)
        tool_calls: tuple[ToolCall, ...] = ()
        if message.tool_calls:
            if role is not Role.ASSISTANT:
                violations.append(
                    FieldViolation(
                        f"{path}.tool_calls", "only ROLE_ASSISTANT turns make tool calls"
                    )
                )
            tool_calls = _tool_calls(message.tool_calls, path, violations, call_ids)
        tool_call_id = message.tool_call_id or None
        if role is Role.TOOL:
            if not tool_call_id:
                violations.append(
                    FieldViolation(
                        f"{path}.tool_call_id",
                        "required in ROLE_TOOL turns: the id of the tool call answered",
                    )
                )
            elif tool_call_id not in call_ids:
                violations.append(
                    FieldViolation(
                        f"{path}.tool_call_id",
                        f"{tool_call_id!r} names no tool call of an earlier ROLE_ASSISTANT turn",
                    )
                )
        elif tool_call_id:
            violations.append(
                FieldViolation(f"{path}.tool_call_id", "only ROLE_TOOL turns carry a tool_call_id")
            )
        result.append(
            Message(
                role,
                message.content,
                parts=parts,
                tool_calls=tool_calls,
                tool_call_id=tool_call_id,
            )
        )
    last_index = len(messages) - 1
    last = messages[-1]
    if last.role not in (pb.ROLE_USER, pb.ROLE_TOOL):
        violations.append(
            FieldViolation(
                f"messages[{last_index}].role",
                "the last message must be ROLE_USER (or ROLE_TOOL, a tool's result)",
            )
        )
    elif last.role == pb.ROLE_USER and not (
        last.content.strip()
        or any(p.WhichOneof("kind") == "image" or p.text.strip() for p in last.parts)
    ):
        violations.append(
            FieldViolation(f"messages[{last_index}].content", "the last user message is empty")
        )
    return tuple(result)


def _parts(
    parts: Sequence[pb.ContentPart],
    role: Role,
    path: str,
    violations: list[FieldViolation],
    max_image_bytes: int,
) -> tuple[ContentPart, ...]:
    result = []
    for j, part in enumerate(parts):
        part_path = f"{path}.parts[{j}]"
        kind = part.WhichOneof("kind")
        if kind == "text":
            result.append(ContentPart(text=part.text))
        elif kind == "image":
            if role is not Role.USER:
                violations.append(
                    FieldViolation(
                        f"{part_path}.image", "images are accepted in ROLE_USER turns only"
                    )
                )
                continue
            image = _image(part.image, f"{part_path}.image", violations, max_image_bytes)
            if image is not None:
                result.append(ContentPart(image=image))
        else:
            violations.append(FieldViolation(part_path, "set one of text, image"))
    return tuple(result)


def _image(
    image: pb.Image, path: str, violations: list[FieldViolation], max_image_bytes: int
) -> Image | None:
    media_type = image.media_type
    source = image.WhichOneof("source")
    ok = True
    if media_type and media_type not in IMAGE_MEDIA_TYPES:
        violations.append(
            FieldViolation(
                f"{path}.media_type",
                f"unsupported media type {media_type[:64]!r}; valid: {_MEDIA_TYPES}",
            )
        )
        ok = False
    if source == "data":
        if not media_type:
            violations.append(
                FieldViolation(
                    f"{path}.media_type",
                    f"required with data; valid: {_MEDIA_TYPES}",
                )
            )
            ok = False
        size = len(image.data)
        if size == 0 or size > max_image_bytes:
            violations.append(
                FieldViolation(
                    f"{path}.data",
                    f"must be 1 to {max_image_bytes} bytes (limits.max_image_bytes), got {size}",
                )
            )
            ok = False
        return Image(media_type, data=image.data) if ok else None
    if source == "url":
        url = image.url
        if not url.startswith(("https://", "http://")) or len(url) > 8192:
            violations.append(
                FieldViolation(
                    f"{path}.url", "must be an http:// or https:// URL (at most 8192 chars)"
                )
            )
            ok = False
        return Image(media_type, url=url) if ok else None
    violations.append(FieldViolation(path, "set one of url, data"))
    return None


def _tool_calls(
    calls: Sequence[pb.ToolCall],
    path: str,
    violations: list[FieldViolation],
    call_ids: set[str],
) -> tuple[ToolCall, ...]:
    result = []
    for k, call in enumerate(calls):
        call_path = f"{path}.tool_calls[{k}]"
        if not call.id:
            violations.append(FieldViolation(f"{call_path}.id", "required: the call's id"))
        if not call.name:
            violations.append(FieldViolation(f"{call_path}.name", "required: the tool called"))
        arguments = call.arguments_json or "{}"
        _json_object(arguments, f"{call_path}.arguments_json", violations)
        call_ids.add(call.id)
        result.append(ToolCall(call.id, call.name, arguments))
    return tuple(result)


def _options(
    request: pb.RouteRequest | pb.ExecuteRequest, violations: list[FieldViolation]
) -> CallOptions:
    tools = _tools(request.tools, violations)
    tool_choice = _tool_choice(request.tool_choice, tools, violations)
    response_format = (
        _response_format(request.response_format, violations)
        if request.HasField("response_format")
        else None
    )
    stop: tuple[str, ...] = ()
    top_p: float | None = None
    seed: int | None = None
    if isinstance(request, pb.ExecuteRequest):
        stop = _stop(request.stop, violations)
        if request.HasField("top_p"):
            value = request.top_p
            if math.isnan(value) or not 0.0 < value <= 1.0:
                violations.append(FieldViolation("top_p", f"must be in (0, 1], got {value:g}"))
            else:
                top_p = value
        seed = request.seed if request.HasField("seed") else None
    if not (
        tools or tool_choice or response_format or stop or top_p is not None or seed is not None
    ):
        return NO_OPTIONS
    return CallOptions(
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        stop=stop,
        top_p=top_p,
        seed=seed,
    )


def _tools(tools: Sequence[pb.Tool], violations: list[FieldViolation]) -> tuple[Tool, ...]:
    result = []
    seen: dict[str, int] = {}
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        name = tool.name
        if not _NAME.fullmatch(name):
            violations.append(
                FieldViolation(f"{path}.name", "must be 1 to 64 characters of [a-zA-Z0-9_-]")
            )
        elif name in seen:
            violations.append(
                FieldViolation(
                    f"{path}.name", f"duplicate tool name {name!r} (also tools[{seen[name]}])"
                )
            )
        else:
            seen[name] = i
        parameters: Mapping[str, Any] | None = _NO_ARGUMENTS
        if tool.parameters_json:
            parameters = _json_object(tool.parameters_json, f"{path}.parameters_json", violations)
        if parameters is not None:
            result.append(Tool(name, tool.description, parameters))
    return tuple(result)


def _tool_choice(
    choice: str, tools: tuple[Tool, ...], violations: list[FieldViolation]
) -> str | None:
    if not choice:
        return None
    if choice in ("auto", "none"):
        return choice
    names = list(dict.fromkeys(t.name for t in tools))
    if choice == "required" and tools:
        return choice
    if choice != "required" and choice in names:
        return choice
    listed = names[:_LISTED_CHOICES] + (["..."] if len(names) > _LISTED_CHOICES else [])
    valid = ", ".join([*_TOOL_CHOICE_MODES, *listed]) if tools else "auto, none (no tools given)"
    what = "required needs tools" if choice == "required" else f"{choice[:64]!r} names no tool"
    violations.append(FieldViolation("tool_choice", f"{what}; valid: {valid}"))
    return None


def _response_format(
    response_format: pb.ResponseFormat, violations: list[FieldViolation]
) -> ResponseFormat | None:
    kind = response_format.WhichOneof("kind")
    name = response_format.name or "response"
    if not _NAME.fullmatch(name):
        violations.append(
            FieldViolation("response_format.name", "must be 1 to 64 characters of [a-zA-Z0-9_-]")
        )
    strict = response_format.strict if response_format.HasField("strict") else True
    if kind == "json_schema":
        schema = _json_object(
            response_format.json_schema, "response_format.json_schema", violations
        )
        if schema is None:
            return None
        return ResponseFormat("json_schema", schema=schema, name=name, strict=strict)
    if kind == "json_object":
        if not response_format.json_object:
            violations.append(
                FieldViolation(
                    "response_format.json_object", "set it to true (or leave response_format unset)"
                )
            )
            return None
        return ResponseFormat("json_object", name=name, strict=strict)
    violations.append(FieldViolation("response_format", "set one of json_schema, json_object"))
    return None


def _stop(stop: Sequence[str], violations: list[FieldViolation]) -> tuple[str, ...]:
    if not stop:
        return ()
    if len(stop) > MAX_STOP_SEQUENCES:
        violations.append(
            FieldViolation("stop", f"at most {MAX_STOP_SEQUENCES} sequences, got {len(stop)}")
        )
        return ()
    for i, sequence in enumerate(stop):
        if not sequence:
            violations.append(FieldViolation(f"stop[{i}]", "must not be empty"))
    return tuple(stop)


def _session_id(session_id: str, violations: list[FieldViolation]) -> str | None:
    if not session_id:
        return None
    if len(session_id) > MAX_SESSION_ID_CHARS or not session_id.isprintable():
        violations.append(
            FieldViolation(
                "session_id", f"must be 1 to {MAX_SESSION_ID_CHARS} printable characters"
            )
        )
        return None
    return session_id


def _metadata(metadata: Mapping[str, str], violations: list[FieldViolation]) -> Mapping[str, str]:
    if not metadata:
        return MappingProxyType({})
    if "" in metadata:
        violations.append(FieldViolation("metadata", "keys must not be empty"))
    return MappingProxyType(dict(metadata))


# Constraints are frozen, so every request that sets none can share one instance.
_NO_CONSTRAINTS = Constraints()


def _constraints(c: pb.Constraints, violations: list[FieldViolation]) -> Constraints:
    if not c.ListFields():
        return _NO_CONSTRAINTS

    def number(
        field: str, low: float, high: float = math.inf, *, low_open: bool = False
    ) -> float | None:
        if not c.HasField(field):
            return None
        value: float = getattr(c, field)
        too_low = value <= low if low_open else value < low
        if math.isnan(value) or too_low or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            expected = f"in [{low:g}, {high:g}]" if high != math.inf else bound
            violations.append(
                FieldViolation(f"constraints.{field}", f"must be {expected}, got {value:g}")
            )
            return None
        return value

    max_output_tokens = None
    if c.HasField("max_output_tokens"):
        if not 1 <= c.max_output_tokens <= MAX_OUTPUT_TOKENS_LIMIT:
            violations.append(
                FieldViolation(
                    "constraints.max_output_tokens",
                    f"must be in [1, {MAX_OUTPUT_TOKENS_LIMIT}], got {c.max_output_tokens}",
                )
            )
        else:
            max_output_tokens = c.max_output_tokens
    classifier = c.classifier if c.HasField("classifier") else None
    return Constraints(
        max_cost_usd=number("max_cost_usd", 0.0),
        max_latency_ms=number("max_latency_ms", 0.0, low_open=True),
        min_quality=number("min_quality", 0.0, 1.0),
        allowed_providers=tuple(c.allowed_providers),
        excluded_models=tuple(c.excluded_models),
        required_capabilities=tuple(c.required_capabilities),
        classifier=classifier,
        max_output_tokens=max_output_tokens,
        willingness_to_pay=number("willingness_to_pay", 0.0),
    )


def temperature(request: pb.ExecuteRequest) -> float | None:
    """``ExecuteRequest.temperature``, validated to [0, 2]; ``None`` when unset."""
    if not request.HasField("temperature"):
        return None
    value = request.temperature
    if math.isnan(value) or not 0.0 <= value <= 2.0:
        raise InvalidRequest.single("temperature", f"must be in [0, 2], got {value:g}")
    return value
