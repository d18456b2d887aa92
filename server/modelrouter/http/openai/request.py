"""OpenAI's chat completions format <-> the router's request and results.

A JSON body becomes an ``ExecuteRequest`` message, then goes through exactly what a gRPC
call goes through: :func:`modelrouter.limits.check_request` (the ``[limits]`` numbers) and
:func:`modelrouter.convert.request_from_proto` (every structural rule). Their field paths
(``tools[1].parameters_json``) are renamed to the JSON's (``tools[1].function.parameters``),
so a 400 names the ``param`` the caller wrote. Only what the JSON itself can get wrong
(types, unknown roles or part types, data URLs) is checked here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ... import convert, limits
from ...errors import FieldViolation, InvalidRequest
from ...types import IMAGE_MEDIA_TYPES, RoutingRequest
from ...v1 import router_pb2 as pb

AUTO = "auto"
_ROLES = {
    "system": pb.ROLE_SYSTEM,
    "developer": pb.ROLE_SYSTEM,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}
#: Accepted and ignored: they change nothing a router can honour, and SDKs send them.
_IGNORED = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "parallel_tool_calls",
        "store",
        "service_tier",
        "prediction",
        "reasoning_effort",
        "verbosity",
        "web_search_options",
        "safety_identifier",
        "prompt_cache_key",
    }
)
_KNOWN = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "response_format",
        "stop",
        "top_p",
        "seed",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "user",
        "metadata",
        "n",
        "stream",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "modelrouter",
    }
)
#: ``x-modelrouter-*`` headers and the ``modelrouter`` body object's keys -> Constraints.
_NUMBERS = ("max_cost_usd", "max_latency_ms", "min_quality", "willingness_to_pay")
_LISTS = ("allowed_providers", "excluded_models", "required_capabilities")
_HEADERS = {
    "x-modelrouter-max-cost-usd": "max_cost_usd",
    "x-modelrouter-max-latency-ms": "max_latency_ms",
    "x-modelrouter-min-quality": "min_quality",
    "x-modelrouter-willingness-to-pay": "willingness_to_pay",
    "x-modelrouter-classifier": "classifier",
    "x-modelrouter-allowed-providers": "allowed_providers",
    "x-modelrouter-excluded-models": "excluded_models",
    "x-modelrouter-required-capabilities": "required_capabilities",
}
_ROUTING_KEYS = ", ".join((*_NUMBERS, *_LISTS, "classifier", "session_id"))
_MEDIA_TYPES = ", ".join(IMAGE_MEDIA_TYPES)
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,", re.ASCII)

#: convert's field paths (protobuf names) -> the JSON's, for structural rules.
_PATHS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^(messages\[\d+\])\.parts\[(\d+)\]\.image(\.\w+)?$", r"\1.content[\2].image_url.url"),
        (r"^(messages\[\d+\])\.parts(\[\d+\])?$", r"\1.content\2"),
        (r"^(messages\[\d+\]\.tool_calls\[\d+\])\.arguments_json$", r"\1.function.arguments"),
        (r"^(messages\[\d+\]\.tool_calls\[\d+\])\.name$", r"\1.function.name"),
        (r"^(tools\[\d+\])\.parameters_json$", r"\1.function.parameters"),
        (r"^(tools\[\d+\])\.name$", r"\1.function.name"),
        (r"^response_format\.json_schema$", r"response_format.json_schema.schema"),
        (r"^response_format\.name$", r"response_format.json_schema.name"),
    )
)


@dataclass
class ChatRequest:
    """A chat completions body, translated: the domain request and how to answer."""

    request: RoutingRequest
    #: What the caller asked for: ``auto`` or a catalog name.
    model: str
    temperature: float | None
    stream: bool = False
    include_usage: bool = False
    #: Where each protobuf path came from, when not the same-named JSON field.
    origins: dict[str, str] = field(default_factory=dict)


class Reader:
    """Reads a parsed JSON body into an ExecuteRequest, collecting violations."""

    def __init__(self, max_image_bytes: int) -> None:
        self.violations: list[FieldViolation] = []
        self.max_image_bytes = max_image_bytes
        self.origins: dict[str, str] = {}

    def bad(self, param: str, description: str) -> None:
        self.violations.append(FieldViolation(param, description))

    def typed(self, value: object, kinds: type | tuple[type, ...], param: str, what: str) -> bool:
        # bool is an int in Python, never in JSON.
        if isinstance(value, kinds) and not (
            isinstance(value, bool) and bool not in _as_tuple(kinds)
        ):
            return True
        self.bad(param, f"must be {what}, got {json_type(value)}")
        return False

    # Messages -------------------------------------------------------------------------

    def messages(self, value: object, out: pb.ExecuteRequest) -> None:
        if not self.typed(value, list, "messages", "an array of messages"):
            return
        assert isinstance(value, list)
        for i, message in enumerate(value):
            path = f"messages[{i}]"
            if not self.typed(message, dict, path, "an object"):
                continue
            out.messages.append(self.message(message, path))

    def message(self, message: dict[str, Any], path: str) -> pb.Message:
        result = pb.Message()
        role = message.get("role")
        if role not in _ROLES:
            self.bad(
                f"{path}.role",
                f"got {json.dumps(role)[:40]}; valid: system, developer, user, assistant, tool",
            )
        else:
            result.role = _ROLES[role]
        content = message.get("content")
        if isinstance(content, str):
            result.content = content
        elif isinstance(content, list):
            for j, part in enumerate(content):
                self.part(part, f"{path}.content[{j}]", result)
        elif content is not None:
            self.bad(
                f"{path}.content",
                f"must be a string or an array of parts, got {json_type(content)}",
            )
        calls = message.get("tool_calls")
        if calls is not None and self.typed(calls, list, f"{path}.tool_calls", "an array"):
            for k, call in enumerate(calls):
                self.tool_call(call, f"{path}.tool_calls[{k}]", result)
        call_id = message.get("tool_call_id")
        if call_id is not None and self.typed(call_id, str, f"{path}.tool_call_id", "a string"):
            result.tool_call_id = call_id
        return result

    def part(self, part: object, path: str, out: pb.Message) -> None:
        if not self.typed(part, dict, path, "an object"):
            return
        assert isinstance(part, dict)
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if self.typed(text, str, f"{path}.{kind}", "a string"):
                out.parts.append(pb.ContentPart(text=text))
        elif kind == "image_url":
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
            if isinstance(url, str):
                image = self.image(url, f"{path}.image_url.url")
                if image is not None:
                    out.parts.append(pb.ContentPart(image=image))
            else:
                self.bad(f"{path}.image_url.url", f"must be a string, got {json_type(url)}")
        else:
            self.bad(f"{path}.type", f"got {json.dumps(kind)[:40]}; valid: text, image_url")

    def image(self, url: str, param: str) -> pb.Image | None:
        if not url.startswith("data:"):
            return pb.Image(url=url)  # http(s) checked by convert
        match = _DATA_URL.match(url)
        if match is None:
            self.bad(param, "a data URL must be data:<media type>;base64,<data>")
            return None
        media_type = match.group(1).lower()
        if media_type not in IMAGE_MEDIA_TYPES:
            self.bad(
                param,
                f"unsupported media type {media_type[:64]!r}; valid: {_MEDIA_TYPES}",
            )
            return None
        encoded = url[match.end() :]
        # 4 base64 characters carry 3 bytes: refuse before decoding what cannot fit.
        if len(encoded) // 4 * 3 - 2 > self.max_image_bytes:
            self.bad(
                param,
                f"images are at most {self.max_image_bytes} bytes (limits.max_image_bytes)",
            )
            return None
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            self.bad(param, "invalid base64 data")
            return None
        return pb.Image(media_type=media_type, data=data)

    def tool_call(self, call: object, path: str, out: pb.Message) -> None:
        if not self.typed(call, dict, path, "an object"):
            return
        assert isinstance(call, dict)
        function = call.get("function")
        if not self.typed(function, dict, f"{path}.function", "an object"):
            return
        assert isinstance(function, dict)
        result = pb.ToolCall()
        for key, target, param in (
            ("id", call, f"{path}.id"),
            ("name", function, f"{path}.function.name"),
            ("arguments", function, f"{path}.function.arguments"),
        ):
            value = target.get(key)
            if value is not None and self.typed(value, str, param, "a string"):
                setattr(result, "arguments_json" if key == "arguments" else key, value)
        out.tool_calls.append(result)

    # Options --------------------------------------------------------------------------

    def tools(self, value: object, out: pb.ExecuteRequest) -> None:
        if not self.typed(value, list, "tools", "an array of tools"):
            return
        assert isinstance(value, list)
        for i, tool in enumerate(value):
            path = f"tools[{i}]"
            if not self.typed(tool, dict, path, "an object"):
                continue
            if tool.get("type", "function") != "function":
                self.bad(f"{path}.type", "only function tools are supported")
                continue
            function = tool.get("function")
            if not self.typed(function, dict, f"{path}.function", "an object"):
                continue
            result = pb.Tool()
            name = function.get("name")
            if self.typed(name, str, f"{path}.function.name", "a string"):
                result.name = name
            description = function.get("description")
            if description is not None and self.typed(
                description, str, f"{path}.function.description", "a string"
            ):
                result.description = description
            parameters = function.get("parameters")
            if parameters is not None and self.typed(
                parameters, dict, f"{path}.function.parameters", "a JSON Schema object"
            ):
                result.parameters_json = json.dumps(parameters)
            out.tools.append(result)

    def tool_choice(self, value: object, out: pb.ExecuteRequest) -> None:
        if isinstance(value, str):
            out.tool_choice = value
            return
        if isinstance(value, dict):
            function = value.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if value.get("type") == "function" and isinstance(name, str):
                out.tool_choice = name
                return
        self.bad(
            "tool_choice",
            'must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}',
        )

    def response_format(self, value: object, out: pb.ExecuteRequest) -> None:
        if not self.typed(value, dict, "response_format", "an object"):
            return
        assert isinstance(value, dict)
        kind = value.get("type")
        if kind == "text":
            return
        if kind == "json_object":
            out.response_format.json_object = True
            return
        if kind != "json_schema":
            self.bad("response_format.type", "valid: text, json_object, json_schema")
            return
        spec = value.get("json_schema")
        if not self.typed(spec, dict, "response_format.json_schema", "an object"):
            return
        assert isinstance(spec, dict)
        schema = spec.get("schema", {})
        if self.typed(schema, dict, "response_format.json_schema.schema", "a JSON Schema object"):
            out.response_format.json_schema = json.dumps(schema)
        name = spec.get("name")
        if name is not None and self.typed(
            name, str, "response_format.json_schema.name", "a string"
        ):
            out.response_format.name = name
        strict = spec.get("strict")
        if strict is not None and self.typed(
            strict, bool, "response_format.json_schema.strict", "a boolean"
        ):
            out.response_format.strict = strict

    def stop(self, value: object, out: pb.ExecuteRequest) -> None:
        if isinstance(value, str):
            out.stop.append(value)
        elif isinstance(value, list) and all(isinstance(s, str) for s in value):
            out.stop.extend(value)
        elif value is not None:
            self.bad("stop", f"must be a string or an array of strings, got {json_type(value)}")

    def number(self, value: object, param: str) -> float | None:
        if value is None:
            return None
        if self.typed(value, (int, float), param, "a number"):
            return float(value)  # type: ignore[arg-type]
        return None

    def integer(self, value: object, param: str) -> int | None:
        if value is None:
            return None
        if self.typed(value, int, param, "an integer"):
            return value  # type: ignore[return-value]
        return None

    def constraint(self, key: str, value: object, param: str, c: pb.Constraints) -> None:
        """One routing constraint from the body object or a header (``value`` is then a string)."""
        self.origins[f"constraints.{key}"] = param
        from_header = param.startswith("x-")
        if key in _NUMBERS:
            if from_header:
                try:
                    value = float(str(value))
                except ValueError:
                    self.bad(param, f"must be a number, got {str(value)[:40]!r}")
                    return
            number = self.number(value, param)
            if number is not None:
                setattr(c, key, number)
        elif key in _LISTS:
            if from_header:
                value = [v.strip() for v in str(value).split(",") if v.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                getattr(c, key).extend(value)
            else:
                self.bad(param, "must be an array of strings")
        elif key == "classifier":
            if self.typed(value, str, param, "a string"):
                c.classifier = value  # type: ignore[assignment]
        else:
            self.bad(
                param,
                f"unknown routing option; valid: {_ROUTING_KEYS}",
            )


def chat_request(
    body: object,
    headers: Mapping[str, str],
    *,
    tenant: str,
    input_limits: limits.InputLimits,
) -> ChatRequest:
    """Translate a chat completions body (and the routing headers) for the pipeline.

    Raises ``InvalidRequest`` naming JSON params (``messages[2].content[0].image_url.url``,
    ``x-modelrouter-min-quality``); ``NotFound`` comes later, from the pipeline.
    """
    if not isinstance(body, dict):
        raise InvalidRequest.single("body", f"must be a JSON object, got {json_type(body)}")
    reader = Reader(input_limits.max_image_bytes)
    out = pb.ExecuteRequest()
    unknown = [k for k in body if k not in _KNOWN and k not in _IGNORED]
    for key in unknown[:5]:
        reader.bad(key, "unrecognized request argument")

    model = body.get("model")
    if not isinstance(model, str) or not model:
        reader.bad("model", 'required: "auto" to route, or a catalog model\'s name')
        model = AUTO
    elif model != AUTO:
        out.model = model

    reader.messages(body.get("messages"), out)
    if body.get("tools") is not None:
        reader.tools(body["tools"], out)
    if body.get("tool_choice") is not None:
        reader.tool_choice(body["tool_choice"], out)
    if body.get("response_format") is not None:
        reader.response_format(body["response_format"], out)
    reader.stop(body.get("stop"), out)
    top_p = reader.number(body.get("top_p"), "top_p")
    if top_p is not None:
        out.top_p = top_p
    seed = reader.integer(body.get("seed"), "seed")
    if seed is not None:
        out.seed = seed
    temperature = reader.number(body.get("temperature"), "temperature")
    if temperature is not None:
        out.temperature = temperature
    for key in ("max_completion_tokens", "max_tokens"):
        tokens = reader.integer(body.get(key), key)
        if tokens is not None:
            if not 1 <= tokens <= convert.MAX_OUTPUT_TOKENS_LIMIT:
                reader.bad(key, f"must be in [1, {convert.MAX_OUTPUT_TOKENS_LIMIT}], got {tokens}")
            else:
                out.constraints.max_output_tokens = tokens
            break
    n = reader.integer(body.get("n"), "n")
    if n not in (None, 1):
        reader.bad("n", "only n=1 is supported")
    if body.get("logprobs"):
        reader.bad("logprobs", "not supported")
    user = body.get("user")
    if user is not None and reader.typed(user, str, "user", "a string"):
        out.metadata["user"] = user
    metadata = body.get("metadata")
    if metadata is not None and reader.typed(metadata, dict, "metadata", "an object"):
        for key, value in metadata.items():
            if reader.typed(value, str, f"metadata.{key[:32]}", "a string"):
                out.metadata[key] = value
    stream = body.get("stream")
    if stream is not None:
        reader.typed(stream, bool, "stream", "a boolean")
    include_usage = False
    options = body.get("stream_options")
    if options is not None and reader.typed(options, dict, "stream_options", "an object"):
        include_usage = options.get("include_usage") is True

    # Routing: headers first, the body's `modelrouter` object wins per key.
    for header, key in _HEADERS.items():
        if header in headers:
            reader.constraint(key, headers[header], header, out.constraints)
    session = headers.get("x-session-id")
    if session is not None:
        out.session_id = session
        reader.origins["session_id"] = "x-session-id"
    extra = body.get("modelrouter")
    if extra is not None and reader.typed(extra, dict, "modelrouter", "an object"):
        for key, value in extra.items():
            if key == "session_id":
                if reader.typed(value, str, "modelrouter.session_id", "a string"):
                    out.session_id = value
                    reader.origins["session_id"] = "modelrouter.session_id"
                continue
            if key in _LISTS:
                out.constraints.ClearField(key)  # type: ignore[arg-type]
            reader.constraint(key, value, f"modelrouter.{key}", out.constraints)
    if "max_tokens" in body and "max_completion_tokens" not in body:
        reader.origins["constraints.max_output_tokens"] = "max_tokens"
    else:
        reader.origins["constraints.max_output_tokens"] = "max_completion_tokens"

    if reader.violations:
        raise InvalidRequest(reader.violations)
    origins = reader.origins
    try:
        limits.check_request(out, input_limits)
        request = convert.request_from_proto(
            out, tenant=tenant, max_image_bytes=input_limits.max_image_bytes
        )
        temperature = convert.temperature(out)
    except InvalidRequest as error:
        raise InvalidRequest(
            [FieldViolation(json_param(v.field, origins), v.description) for v in error.violations]
        ) from None
    return ChatRequest(
        request=request,
        model=model,
        temperature=temperature,
        stream=stream is True,
        include_usage=include_usage,
        origins=origins,
    )


def json_param(path: str, origins: Mapping[str, str]) -> str:
    """The JSON param (or header) a convert/limits field path stands for."""
    if path in origins:
        return origins[path]
    if path.startswith("constraints."):
        return "modelrouter." + path.removeprefix("constraints.")
    for pattern, replacement in _PATHS:
        if pattern.match(path):
            return pattern.sub(replacement, path)
    return path


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
