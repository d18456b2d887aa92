"""Domain types shared by the router, its plugins and the gRPC edge.

These are plain dataclasses and enums; protobuf messages exist only at the gRPC edge
(``modelrouter.convert``). Plugin authors import them from ``modelrouter``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal


class Complexity(enum.IntEnum):
    """How demanding a request is. Values match ``modelrouter.v1.Complexity``."""

    SIMPLE = 1
    MODERATE = 2
    COMPLEX = 3
    EXPERT = 4


class TaskType(enum.IntEnum):
    """What kind of work a request asks for. Values match ``modelrouter.v1.TaskType``."""

    CHAT = 1
    QA = 2
    SUMMARIZATION = 3
    CODE = 4
    REASONING = 5
    CREATIVE = 6
    EXTRACTION = 7
    TRANSLATION = 8


class Role(enum.StrEnum):
    """Author of a conversation turn."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    #: The result of a tool call (``Message.tool_call_id`` names the call).
    TOOL = "tool"


#: Image media types every built-in provider accepts.
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


@dataclass(frozen=True, slots=True)
class Image:
    """An image: inline ``data`` (with its ``media_type``) or a ``url`` the provider fetches.

    Exactly one of ``url`` and ``data`` is set; ``media_type`` is one of
    :data:`IMAGE_MEDIA_TYPES` (it may be empty for a URL).
    """

    media_type: str = ""
    url: str | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class ContentPart:
    """One piece of a turn: exactly one of ``text`` and ``image`` is set."""

    text: str | None = None
    image: Image | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of one tool made by the model. ``arguments_json`` is a JSON object as text."""

    id: str
    name: str
    arguments_json: str = "{}"


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call. ``parameters`` is its arguments' JSON Schema, parsed."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({"type": "object", "properties": {}})
    )


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """The shape the answer must take.

    ``kind`` is ``"json_schema"`` (the answer conforms to ``schema``, enforced exactly by
    providers that can when ``strict``) or ``"json_object"`` (any JSON object; ``schema``
    is ``None``). ``name`` is what providers that want a schema name get.
    """

    kind: Literal["json_schema", "json_object"]
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation.

    ``Message(role, content)`` is a plain text turn. A turn may instead carry ``parts``
    (text and images, in order; then ``content`` is empty). Assistant turns may carry the
    ``tool_calls`` the model made; tool turns name the call they answer in ``tool_call_id``.
    """

    role: Role
    content: str = ""
    parts: tuple[ContentPart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """The turn's text: ``content``, or its text parts joined by newlines."""
        if not self.parts:
            return self.content
        return "\n".join(p.text for p in self.parts if p.text is not None)

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(p.image for p in self.parts if p.image is not None)

    @property
    def has_image(self) -> bool:
        return any(p.image is not None for p in self.parts)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What a request asks of the model besides the conversation.

    ``tool_choice`` is ``None`` (the provider's default: ``auto`` when tools are given),
    ``"auto"``, ``"none"``, ``"required"``, or the name of one of ``tools``. ``stop`` ends
    the answer at any of its sequences; ``top_p`` is in (0, 1]; ``seed`` asks for
    deterministic sampling where the provider supports it.
    """

    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    response_format: ResponseFormat | None = None
    stop: tuple[str, ...] = ()
    top_p: float | None = None
    seed: int | None = None


#: The options of a request that sets none: shared, since options are immutable.
NO_OPTIONS = CallOptions()
_NO_METADATA: Mapping[str, str] = MappingProxyType({})


def needed_capabilities(messages: tuple[Message, ...], options: CallOptions) -> frozenset[str]:
    """Catalog capabilities a model needs to serve this conversation with these options:
    ``tools`` for tools (or tool turns), ``vision`` for any image, ``json`` for a response
    format. Linear in the number of parts."""
    needed = set()
    if options.tools:
        needed.add("tools")
    if options.response_format is not None:
        needed.add("json")
    for message in messages:
        if message.parts and message.has_image:
            needed.add("vision")
        if message.tool_calls or message.role is Role.TOOL:
            needed.add("tools")
    return frozenset(needed)


@dataclass(frozen=True, slots=True)
class Constraints:
    """Caller limits on the choice of model. ``None`` or empty means "no limit"."""

    max_cost_usd: float | None = None
    max_latency_ms: float | None = None
    min_quality: float | None = None
    allowed_providers: tuple[str, ...] = ()
    excluded_models: tuple[str, ...] = ()
    required_capabilities: tuple[str, ...] = ()
    classifier: str | None = None
    #: Upper bound on generated tokens; also used for cost estimates and budget reservations.
    max_output_tokens: int | None = None
    #: Quality points (0..1 scale) the caller would give up one USD for. When set, selection
    #: maximises ``quality - willingness_to_pay * cost`` instead of taking the cheapest model
    #: that meets the quality floor.
    willingness_to_pay: float | None = None


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """What a classifier and the selection policy see of one request."""

    messages: tuple[Message, ...]
    constraints: Constraints = field(default_factory=Constraints)
    #: Tenant on whose behalf the request runs ("default" when auth is off).
    tenant: str = "default"
    #: Explicit model asked for by the caller (skips selection), or ``None``.
    model: str | None = None
    #: Tools, tool choice, response format and sampling options for the model.
    options: CallOptions = NO_OPTIONS
    #: Caller-chosen conversation id (scoped to ``tenant``) for sticky routing, or ``None``.
    session_id: str | None = None
    #: Caller's labels, recorded with the decision and never sent upstream (read-only).
    metadata: Mapping[str, str] = field(default_factory=lambda: _NO_METADATA)

    def needed_capabilities(self) -> frozenset[str]:
        """Capabilities the request itself needs (``tools``, ``vision``, ``json``), on top
        of ``constraints.required_capabilities``. Routing must never drop them."""
        return needed_capabilities(self.messages, self.options)

    @property
    def prompt(self) -> str:
        """The last user turn's text: what the caller wants answered."""
        for message in reversed(self.messages):
            if message.role is Role.USER:
                return message.text
        return ""

    @property
    def system_prompt(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role is Role.SYSTEM)

    @property
    def prior_turns(self) -> int:
        """Number of non-system turns before the last user turn."""
        turns = [m for m in self.messages if m.role is not Role.SYSTEM]
        return max(len(turns) - 1, 0)

    @property
    def text(self) -> str:
        """Everything sent as text (turns, tool calls' arguments, tool schemas) joined; what
        token estimates are computed over. Images are not included."""
        pieces = []
        for m in self.messages:
            pieces.append(m.text)
            for call in m.tool_calls:
                pieces.append(call.name)
                pieces.append(call.arguments_json)
        for tool in self.options.tools:
            pieces.append(f"{tool.name} {tool.description} {json.dumps(dict(tool.parameters))}")
        if self.options.response_format is not None and self.options.response_format.schema:
            pieces.append(json.dumps(dict(self.options.response_format.schema)))
        return "\n".join(pieces)

    @classmethod
    def from_prompt(cls, prompt: str, **kwargs: object) -> RoutingRequest:
        """Convenience for the common single-prompt case."""
        return cls(messages=(Message(Role.USER, prompt),), **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Classification:
    """A classifier's verdict on one request."""

    complexity: Complexity
    task_type: TaskType
    #: Continuous difficulty in [0, 1], consistent with ``complexity``.
    score: float
    #: How sure the classifier is, in [0, 1].
    confidence: float
    #: Name of the classifier that decided.
    classifier: str
    features: Mapping[str, float] = field(default_factory=dict)
    #: Optional per-model quality predictions in [0, 1] (model name -> expected quality) from
    #: classifiers that learn which models answer which prompts. Selection uses them in place
    #: of the catalog's static quality for the models they name.
    predicted_quality: Mapping[str, float] = field(default_factory=dict)
    #: Version of the trained router that decided (a content hash; the A/B arm's when a
    #: candidate was tried), or "" for classifiers that are not trained artefacts.
    router_version: str = ""
