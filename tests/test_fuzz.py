"""Hostile input cannot hurt: generated requests for every RPC against one real server.

For each RPC's request message, ``hypothesis`` builds messages from the message's own
descriptor: arbitrary Unicode (NUL, combining marks, astral planes), huge and negative
integers, NaN and infinite doubles, enum values outside the enum, repeated fields and
maps with many entries, tools, parts and images full of junk, and now and then plausible
values (catalog names, a real decision id, JSON schemas) so that requests get past the
first checks and reach the pipeline. Every call must end OK or with a client status:
never INTERNAL or UNKNOWN (nor any other server status but a caller-chosen deadline), and
the server must still be healthy and answering afterwards.

One server for the module, in a thread of its own with its own event loop, so that the
synchronous ``@given`` tests drive it through a blocking channel. Examples are
derandomized: CI replays the same ones every run.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelrouter.config import parse_config
from modelrouter.testing import TEST_CONFIG, FakeProvider, fake_provider_plugin
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

#: Statuses that say the server failed, not the caller.
SERVER_FAULTS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNIMPLEMENTED,
}
CALL_TIMEOUT_S = 10.0
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CONFIG = (
    TEST_CONFIG
    + """
[budgets.default]
day_usd = 1000.0

[http]
port = 0
"""
)


# -- the server, once per module -----------------------------------------------------------


class ServerThread:
    """A real server on a free port, served by an event loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def start(self) -> int:
        from modelrouter.server import create_server

        self.thread.start()
        config = parse_config(CONFIG, source="fuzz")
        self.server = self.run(
            create_server(config, host="127.0.0.1", port=0, plugins=[fake_provider_plugin])
        )
        return int(self.server.port)

    def stop(self) -> None:
        self.run(self.server.stop(grace=0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Target:
    def __init__(self, channel: grpc.Channel, decision_id: str) -> None:
        self.channel = channel
        self.stub = router_pb2_grpc.ModelRouterStub(channel)
        self.decision_id = decision_id


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    FakeProvider.reset()
    server = ServerThread()
    port = server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.ModelRouterStub(channel)
    routed = stub.Route(pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]))
    try:
        yield Target(channel, routed.decision_id)
        # Still alive and well after everything the module threw at it.
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        answer = stub.Execute(
            pb.ExecuteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="still there?")]),
            timeout=CALL_TIMEOUT_S,
        )
        assert answer.text
    finally:
        channel.close()
        server.stop()
        FakeProvider.reset()


# -- messages from descriptors --------------------------------------------------------------

_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

#: Unicode without surrogates (protobuf strings are UTF-8), NUL and controls included.
_chars = st.characters(codec="utf-8")
_junk_text = st.text(_chars, max_size=40)
#: Now and then a long string: one character repeated (cheap to build, big on the wire).
_long_text = st.builds(lambda c, n: c * n, _chars, st.integers(1_000, 300_000))
_text = st.one_of(_junk_text, _junk_text, _junk_text, _long_text)

_json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(_chars, max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_schema = st.sampled_from(
    [
        '{"type": "object", "properties": {"a": {"type": "string"}}}',
        '{"type": "object"}',
        "{}",
        "[]",
        "null",
        '{"type": "object", "properties": ' * 80 + "{}" + "}" * 80,
        "{" * 5000,
    ]
)
_json_text = st.one_of(_schema, _json_values.map(json.dumps), _junk_text)
_ints = st.one_of(
    st.integers(-3, 10), st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 2**31 - 1])
)

#: Plausible values per field name, mixed with junk, so requests reach the pipeline.
_PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["", "tiny", "small-coder", "large", "nope"]),
    "name": st.sampled_from(["tiny", "large", "lookup", "get_weather", "bad name!", ""]),
    "excluded_models": st.sampled_from(["tiny", "large", "small-coder", "ghost"]),
    "allowed_providers": st.sampled_from(["budget", "premium", "ghost"]),
    "required_capabilities": st.sampled_from(["chat", "code", "vision", "tools", "json"]),
    "classifier": st.sampled_from(["rules", "", "judge", "ghost"]),
    "tool_choice": st.sampled_from(["", "auto", "none", "required", "lookup"]),
    "media_type": st.sampled_from(["image/png", "image/jpeg", "text/html", ""]),
    "url": st.sampled_from(["https://example.com/a.png", "ftp://x", "http://", "javascript:"]),
    "session_id": st.sampled_from(["", "s1", "x" * 129]),
    "source": st.sampled_from(["", "eval", "user-1"]),
    "parameters_json": _json_text,
    "json_schema": _json_text,
    "arguments_json": _json_text,
}


def _scalar(field: FieldDescriptor, big: bool = False) -> st.SearchStrategy[Any]:
    """Values of a scalar field; ``big``: long strings and bytes too (only where they are
    not copied hundreds of times, so that a request stays a few MB at most)."""
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        text = _text if big else _junk_text
        plausible = _PLAUSIBLE.get(field.name)
        return st.one_of(plausible, plausible, text) if plausible is not None else text
    if t == FieldDescriptor.TYPE_BYTES:
        if not big:
            return st.binary(max_size=64)
        return st.one_of(
            st.binary(max_size=64), st.builds(lambda n: b"\x89PNG" * n, st.integers(0, 50_000))
        )
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        floats = st.floats(allow_nan=True, allow_infinity=True, width=32 if t == 2 else 64)
        return st.one_of(floats, st.sampled_from([0.0, 0.5, 1.0, -1.0, 1e308, -0.0]))
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        # proto3 enums are open: values outside the enum travel as they are.
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    low, high = _INT_BOUNDS[t]
    if field.name in ("max_output_tokens", "seed"):
        return st.one_of(st.integers(low, high), st.integers(-5, 5000))
    return st.one_of(st.integers(low, high), _ints.filter(lambda v: low <= v <= high))


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 5.28+ says so directly; older ones through the (since removed) label.
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _field_values(field: FieldDescriptor, depth: int, big: bool) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1, big=big and depth < 1)
    return _scalar(field, big)


@st.composite
def _message(draw: st.DrawFn, descriptor: Descriptor, depth: int, big: bool) -> Message:
    cls: type[Message] = getattr(pb, descriptor.name)
    msg = cls()
    for field in descriptor.fields:
        if depth > 3 and field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        if not draw(st.booleans()):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            size = draw(st.one_of(st.integers(0, 4), st.sampled_from([65, 300])))
            entries = draw(
                st.dictionaries(_scalar(key_field), _scalar(value_field), min_size=0, max_size=size)
            )
            getattr(msg, field.name).update(entries)
        elif _repeated(field):
            # Mostly a few entries; at the top, sometimes more than any limit allows.
            many = st.sampled_from([300]) if depth == 0 else st.integers(0, 4)
            size = draw(st.one_of(st.integers(0, 4), st.integers(0, 4), many))
            if size > 4:
                # Many copies of one small value: past every limit, cheap to build.
                one = draw(_field_values(field, depth, big=False))
                getattr(msg, field.name).extend([one] * size)
            else:
                values = draw(st.lists(_field_values(field, depth, big), max_size=size))
                getattr(msg, field.name).extend(values)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, field.name).CopyFrom(draw(_field_values(field, depth, big)))
        else:
            setattr(msg, field.name, draw(_scalar(field, big)))
    return msg


def messages(
    descriptor: Descriptor, depth: int = 0, big: bool = True
) -> st.SearchStrategy[Message]:
    return _message(descriptor, depth, big)


def conversation_request(name: str) -> st.SearchStrategy[Message]:
    """A request message; half the time its conversation ends with a plain user turn, so
    that the rest of the request is what decides."""
    descriptor = pb.DESCRIPTOR.message_types_by_name[name]

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = draw(messages(descriptor))
        # A few MB at most (under the server's 4 MiB message limit, or just over it).
        assert msg.ByteSize() < 8 * 1024 * 1024, msg.ByteSize()
        if "messages" in descriptor.fields_by_name and draw(st.booleans()):
            msg.messages.append(pb.Message(role=pb.ROLE_USER, content=draw(_junk_text) or "hi"))
        return msg

    return build()


# -- the checks ---------------------------------------------------------------------------


def check(call: Callable[[], Any], request: Message) -> None:
    try:
        call()
    except grpc.RpcError as error:
        code = error.code()  # type: ignore[attr-defined]
        details = error.details()  # type: ignore[attr-defined]
        assert code not in SERVER_FAULTS, (
            f"{code.name}: {details}\nrequest ({request.ByteSize()} bytes): {str(request)[:2000]}"
        )


def unary(target: Target, method: str, request: Message) -> None:
    rpc = getattr(target.stub, method)
    check(lambda: rpc(request, timeout=CALL_TIMEOUT_S), request)


@given(request=conversation_request("ClassifyRequest"))
@FUZZ
def test_classify_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "Classify", request)


@given(request=conversation_request("RouteRequest"))
@FUZZ
def test_route_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "Route", request)


@given(request=conversation_request("ExecuteRequest"))
@FUZZ
def test_execute_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "Execute", request)


@given(request=conversation_request("ExecuteRequest"))
@FUZZ
def test_execute_stream_survives_any_request(target: Target, request: Message) -> None:
    check(lambda: list(target.stub.ExecuteStream(request, timeout=CALL_TIMEOUT_S)), request)


@given(request=messages(pb.ListModelsRequest.DESCRIPTOR))
@settings(FUZZ, max_examples=10)
def test_list_models_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "ListModels", request)


@given(request=messages(pb.GetModelRequest.DESCRIPTOR))
@FUZZ
def test_get_model_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "GetModel", request)


@given(request=messages(pb.SubmitFeedbackRequest.DESCRIPTOR), real_id=st.booleans())
@FUZZ
def test_submit_feedback_survives_any_request(
    target: Target, request: Message, real_id: bool
) -> None:
    if real_id:
        request.decision_id = target.decision_id  # type: ignore[attr-defined]
    unary(target, "SubmitFeedback", request)


@given(request=messages(pb.GetUsageRequest.DESCRIPTOR))
@settings(FUZZ, max_examples=10)
def test_get_usage_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "GetUsage", request)


@given(request=messages(pb.GetStatsRequest.DESCRIPTOR))
@settings(FUZZ, max_examples=10)
def test_get_stats_survives_any_request(target: Target, request: Message) -> None:
    unary(target, "GetStats", request)


def test_unknown_fields_and_garbage_bytes_are_client_errors(target: Target) -> None:
    """Bytes that are not the request message at all (unknown fields, truncated varints,
    wrong wire types) are refused as the client's fault or ignored, never a server fault."""
    garbage = [
        b"\xff" * 64,
        b"\x0a\xff\xff\xff\xff\x0f",  # messages: a length far past the end
        b"\x08\x96\x01" * 100,  # field 1 as a varint where a message is expected
        b"\xfa\xff\xff\xff\x0f\x00",  # an unknown field number near the maximum
        bytes(range(256)),
    ]
    for method in ("Classify", "Route", "Execute", "SubmitFeedback", "GetModel"):
        rpc = target.channel.unary_unary(
            f"/modelrouter.v1.ModelRouter/{method}",
            request_serializer=None,
            response_deserializer=None,
        )
        for payload in garbage:
            try:
                rpc(payload, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                assert code not in {grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}, (
                    method,
                    payload[:16],
                    code,
                    error.details(),  # type: ignore[attr-defined]
                )
