"""Bounded input, refused early: size checks on a request proto before anything else reads it.

:func:`check_request` runs first in every RPC that takes a conversation or feedback, before
the request is converted to domain objects. It reads the length of every repeated field
before it walks one, so a hostile request (a million ``excluded_models``, a 4 MiB prompt)
is refused in well under a millisecond of Python and never copied: the work is bounded by
the limits, not by the request. A refusal is ``InvalidRequest`` (INVALID_ARGUMENT) listing
at most :data:`MAX_REPORTED` violations, each naming the field, the limit's key in
``[limits]`` and the size found.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Protocol

from google.protobuf.message import Message as ProtoMessage

from .errors import FieldViolation, InvalidRequest
from .v1 import router_pb2 as pb

__all__ = ["MAX_REPORTED", "InputLimits", "check_request"]

#: Violations listed in one refusal, at most: enough to fix a request, never a huge trailer.
MAX_REPORTED = 5


class InputLimits(Protocol):
    """The ``[limits]`` table (``config.limits``): any object with these attributes, read only."""

    @property
    def max_messages(self) -> int: ...

    @property
    def max_parts_per_message(self) -> int: ...

    @property
    def max_tools(self) -> int: ...

    @property
    def max_schema_bytes(self) -> int: ...

    @property
    def max_prompt_chars(self) -> int: ...

    @property
    def max_constraint_entries(self) -> int: ...

    @property
    def max_metadata_entries(self) -> int: ...

    @property
    def max_metadata_value_chars(self) -> int: ...

    @property
    def max_feedback_comment_chars(self) -> int: ...

    @property
    def max_feedback_source_chars(self) -> int: ...

    @property
    def max_image_bytes(self) -> int: ...


class _Refusal(Exception):
    """Enough violations were found: stop looking."""


class _Violations:
    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.found.append(FieldViolation(field, description))
        if len(self.found) >= MAX_REPORTED:
            raise _Refusal

    def at_most(self, field: str, value: Sized, limit: int, key: str, unit: str) -> bool:
        """Check ``len(value) <= limit``; False (and a violation) when it is over."""
        size = len(value)
        if size <= limit:
            return True
        self.add(field, f"at most {limit} {unit} (limits.{key}), got {size}")
        return False


def check_request(request: ProtoMessage, limits: InputLimits) -> None:
    """Refuse ``request`` (a ClassifyRequest, RouteRequest, ExecuteRequest or
    SubmitFeedbackRequest) with ``InvalidRequest`` when it exceeds ``limits``.

    Checks the number of messages, parts and tool calls per message, tools, schema bytes
    (tool parameters and response format), total prompt characters (turn text, tool
    arguments and descriptions), repeated constraint entries, stop sequences, metadata
    entries and their lengths, image bytes, and feedback comment and source lengths. Other
    message types pass unchecked. Runs in time bounded by the limits, never by the input.
    """
    violations = _Violations()
    try:
        if isinstance(request, pb.SubmitFeedbackRequest):
            _feedback(request, limits, violations)
        elif isinstance(request, pb.ClassifyRequest | pb.RouteRequest | pb.ExecuteRequest):
            _conversation(request, limits, violations)
    except _Refusal:
        pass
    if violations.found:
        raise InvalidRequest(violations.found)


def _feedback(
    request: pb.SubmitFeedbackRequest, limits: InputLimits, violations: _Violations
) -> None:
    violations.at_most(
        "comment",
        request.comment,
        limits.max_feedback_comment_chars,
        "max_feedback_comment_chars",
        "characters",
    )
    violations.at_most(
        "source",
        request.source,
        limits.max_feedback_source_chars,
        "max_feedback_source_chars",
        "characters",
    )


def _conversation(
    request: pb.ClassifyRequest | pb.RouteRequest | pb.ExecuteRequest,
    limits: InputLimits,
    violations: _Violations,
) -> None:
    constraints = request.constraints
    for name in ("excluded_models", "allowed_providers", "required_capabilities"):
        violations.at_most(
            f"constraints.{name}",
            getattr(constraints, name),
            limits.max_constraint_entries,
            "max_constraint_entries",
            "entries",
        )
    # The budget every text counts against; a string longer than what is left is never
    # read (only its length is).
    budget = limits.max_prompt_chars
    if isinstance(request, pb.RouteRequest | pb.ExecuteRequest):
        budget = _tools(request, limits, violations, budget)
    if isinstance(request, pb.ExecuteRequest):
        _execute_extras(request, limits, violations)
    over = budget < 0  # the tools alone were over: reported once, there
    messages = request.messages
    if not violations.at_most(
        "messages", messages, limits.max_messages, "max_messages", "messages"
    ):
        return
    for i, message in enumerate(messages):
        budget -= len(message.content) + len(message.tool_call_id)
        parts = message.parts
        if violations.at_most(
            f"messages[{i}].parts",
            parts,
            limits.max_parts_per_message,
            "max_parts_per_message",
            "parts",
        ):
            for j, part in enumerate(parts):
                if part.WhichOneof("kind") == "image":
                    violations.at_most(
                        f"messages[{i}].parts[{j}].image.data",
                        part.image.data,
                        limits.max_image_bytes,
                        "max_image_bytes",
                        "bytes",
                    )
                else:
                    budget -= len(part.text)
        calls = message.tool_calls
        if violations.at_most(
            f"messages[{i}].tool_calls", calls, limits.max_tools, "max_tools", "tool calls"
        ):
            for call in calls:
                budget -= len(call.arguments_json) + len(call.name) + len(call.id)
        if budget < 0 and not over:
            # Reported once, at the message that crossed the line.
            total = limits.max_prompt_chars - budget
            violations.add(
                f"messages[{i}]",
                f"the prompt reaches {total} characters here; at most "
                f"{limits.max_prompt_chars} (limits.max_prompt_chars)",
            )
            return


def _tools(
    request: pb.RouteRequest | pb.ExecuteRequest,
    limits: InputLimits,
    violations: _Violations,
    budget: int,
) -> int:
    if request.HasField("response_format"):
        _schema_bytes(
            "response_format.json_schema", request.response_format.json_schema, limits, violations
        )
    tools = request.tools
    if not violations.at_most("tools", tools, limits.max_tools, "max_tools", "tools"):
        return budget
    for i, tool in enumerate(tools):
        _schema_bytes(f"tools[{i}].parameters_json", tool.parameters_json, limits, violations)
        budget -= len(tool.description) + len(tool.name)
    if budget < 0:
        violations.add(
            "tools",
            f"tool descriptions exceed {limits.max_prompt_chars} characters "
            "(limits.max_prompt_chars)",
        )
    return budget


def _schema_bytes(field: str, text: str, limits: InputLimits, violations: _Violations) -> None:
    limit = limits.max_schema_bytes
    # A character is 1 to 4 UTF-8 bytes: encode only when the length alone cannot decide.
    size = len(text)
    if size > limit or (4 * size > limit and len(text.encode()) > limit):
        violations.add(field, f"at most {limit} bytes of UTF-8 (limits.max_schema_bytes), got more")


def _execute_extras(
    request: pb.ExecuteRequest, limits: InputLimits, violations: _Violations
) -> None:
    violations.at_most(
        "stop", request.stop, limits.max_constraint_entries, "max_constraint_entries", "entries"
    )
    metadata = request.metadata
    if not violations.at_most(
        "metadata", metadata, limits.max_metadata_entries, "max_metadata_entries", "entries"
    ):
        return
    longest = limits.max_metadata_value_chars
    for key, value in metadata.items():
        if len(key) > longest or len(value) > longest:
            violations.add(
                f"metadata[{key[:32]!r}]",
                f"keys and values at most {longest} characters (limits.max_metadata_value_chars)",
            )
