from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import grpc
from google.protobuf import message as proto_message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

_ROLES = {
    "system": pb.ROLE_SYSTEM,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}
_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.QuotaFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
)
Conversation = str | Sequence[tuple[str, str]] | Sequence[pb.Message]


def build_messages(conversation: Conversation) -> list[pb.Message]:
    """A prompt string, ``(role, content)`` pairs, or ready ``Message`` protos."""
    if isinstance(conversation, str):
        return [pb.Message(role=pb.ROLE_USER, content=conversation)]
    messages = []
    for item in conversation:
        if isinstance(item, pb.Message):
            messages.append(item)
        else:
            role, content = item
            if role not in _ROLES:
                raise ValueError(f"unknown role {role!r}; valid: {', '.join(_ROLES)}")
            messages.append(pb.Message(role=_ROLES[role], content=content))
    return messages


def tool(name: str, parameters: Mapping[str, Any] | None = None, description: str = "") -> pb.Tool:
    """A tool the model may call; ``parameters`` is its arguments' JSON Schema."""
    return pb.Tool(
        name=name,
        description=description,
        parameters_json=json.dumps(dict(parameters)) if parameters is not None else "",
    )


def image(source: str | Path | bytes, media_type: str = "") -> pb.ContentPart:
    """An image part: an ``http(s)://`` URL, a file path, or encoded bytes (then give
    ``media_type``; for a path it is guessed from the file name when not given)."""
    if isinstance(source, bytes):
        return pb.ContentPart(image=pb.Image(data=source, media_type=media_type))
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return pb.ContentPart(image=pb.Image(url=source, media_type=media_type))
    path = Path(source)
    guessed = media_type or mimetypes.guess_type(path.name)[0] or ""
    return pb.ContentPart(image=pb.Image(data=path.read_bytes(), media_type=guessed))


def user_message(*parts: str | pb.ContentPart) -> pb.Message:
    """A user turn of text and image parts, in order (strings are text parts)."""
    return pb.Message(
        role=pb.ROLE_USER,
        parts=[pb.ContentPart(text=p) if isinstance(p, str) else p for p in parts],
    )


def assistant_message(response: pb.ExecuteResponse) -> pb.Message:
    """The assistant turn of an answer (text and tool calls), to send back in a loop."""
    return pb.Message(
        role=pb.ROLE_ASSISTANT, content=response.text, tool_calls=list(response.tool_calls)
    )


def tool_result(tool_call_id: str, content: str | Any) -> pb.Message:
    """The result of one tool call; non-string content is sent as JSON."""
    text = content if isinstance(content, str) else json.dumps(content)
    return pb.Message(role=pb.ROLE_TOOL, content=text, tool_call_id=tool_call_id)


def json_schema(
    schema: Mapping[str, Any], *, name: str = "", strict: bool | None = None
) -> pb.ResponseFormat:
    """A response format: the answer conforms to ``schema``."""
    response_format = pb.ResponseFormat(json_schema=json.dumps(dict(schema)), name=name)
    if strict is not None:
        response_format.strict = strict
    return response_format


JSON_OBJECT = pb.ResponseFormat(json_object=True)


def error_details(error: grpc.RpcError) -> list[proto_message.Message]:
    """The google.rpc detail messages attached to a failed call, decoded."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    details: list[proto_message.Message] = []
    for any_detail in status.details if status else []:
        for detail_type in _DETAIL_TYPES:
            if any_detail.Is(detail_type.DESCRIPTOR):
                detail = detail_type()
                any_detail.Unpack(detail)
                details.append(detail)
    return details


def _constraints(constraints: dict[str, Any]) -> pb.Constraints:
    return pb.Constraints(**{k: v for k, v in constraints.items() if v is not None})


class RouteOptions(TypedDict, total=False):
    """Keyword arguments of ``route``: the ``Constraints`` fields and the request's options."""

    max_cost_usd: float
    max_latency_ms: float
    min_quality: float
    allowed_providers: Sequence[str]
    excluded_models: Sequence[str]
    required_capabilities: Sequence[str]
    classifier: str
    max_output_tokens: int
    willingness_to_pay: float
    #: Tools the model may call (see :func:`tool`).
    tools: Sequence[pb.Tool]
    #: "auto", "none", "required", or one tool's name.
    tool_choice: str
    #: See :func:`json_schema` and :data:`JSON_OBJECT`.
    response_format: pb.ResponseFormat
    #: Keeps a conversation on one model across turns.
    session_id: str


class ExecuteOptions(RouteOptions, total=False):
    """Keyword arguments of ``execute`` and ``execute_stream``."""

    #: Call this catalog model instead of routing.
    model: str
    temperature: float
    stop: Sequence[str]
    top_p: float
    seed: int
    #: Labels recorded with the decision, never sent upstream.
    metadata: Mapping[str, str]


_ROUTE_FIELDS = ("tools", "tool_choice", "response_format", "session_id")
_EXECUTE_FIELDS = (*_ROUTE_FIELDS, "stop", "top_p", "seed", "metadata", "temperature", "model")


def _split(
    kwargs: Mapping[str, Any], fields: Sequence[str]
) -> tuple[dict[str, Any], pb.Constraints]:
    """(request fields, Constraints) from keyword arguments; ``None`` means unset."""
    request = {f: kwargs[f] for f in fields if kwargs.get(f) is not None}
    constraints = {k: v for k, v in kwargs.items() if k not in fields}
    return request, _constraints(constraints)


def _route_request(conversation: Conversation, kwargs: RouteOptions) -> pb.RouteRequest:
    fields, constraints = _split(kwargs, _ROUTE_FIELDS)
    return pb.RouteRequest(messages=build_messages(conversation), constraints=constraints, **fields)


def _execute_request(conversation: Conversation, kwargs: ExecuteOptions) -> pb.ExecuteRequest:
    fields, constraints = _split(kwargs, _EXECUTE_FIELDS)
    return pb.ExecuteRequest(
        messages=build_messages(conversation), constraints=constraints, **fields
    )


def _feedback_request(
    decision_id: str, score: float, success: bool, comment: str, source: str
) -> pb.SubmitFeedbackRequest:
    return pb.SubmitFeedbackRequest(
        decision_id=decision_id, score=score, success=success, comment=comment, source=source
    )


def _metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {api_key}"),) if api_key else None


class AsyncModelRouterClient:
    """asyncio client. Keyword arguments of the calls are ``Constraints`` fields, plus for
    ``route`` and ``execute``: ``tools`` (see :func:`tool`), ``tool_choice``,
    ``response_format`` (see :func:`json_schema`, :data:`JSON_OBJECT`) and ``session_id``;
    for ``execute`` also ``model``, ``temperature``, ``stop``, ``top_p``, ``seed`` and
    ``metadata``. Results carry ``tool_calls``; answer them with :func:`tool_result`.

    ``api_key`` is sent as ``authorization: Bearer ...`` on every call; pass ``channel`` to
    use TLS or other channel options.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        timeout_s: float | None = 30.0,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.channel = channel or grpc.aio.insecure_channel(target)
        self.stub = router_pb2_grpc.ModelRouterStub(self.channel)
        self.timeout_s = timeout_s
        self._metadata = _metadata(api_key)

    async def _call(self, method: str, request: Any) -> Any:
        return await getattr(self.stub, method)(
            request, timeout=self.timeout_s, metadata=self._metadata
        )

    async def classify(self, conversation: Conversation, **constraints: Any) -> pb.ClassifyResponse:
        messages = build_messages(conversation)
        request = pb.ClassifyRequest(messages=messages, constraints=_constraints(constraints))
        return await self._call("Classify", request)

    async def route(
        self, conversation: Conversation, **kwargs: Unpack[RouteOptions]
    ) -> pb.RouteResponse:
        return await self._call("Route", _route_request(conversation, kwargs))

    async def execute(
        self, conversation: Conversation, **kwargs: Unpack[ExecuteOptions]
    ) -> pb.ExecuteResponse:
        return await self._call("Execute", _execute_request(conversation, kwargs))

    async def execute_stream(
        self, conversation: Conversation, **kwargs: Unpack[ExecuteOptions]
    ) -> AsyncIterator[pb.ExecuteStreamResponse]:
        request = _execute_request(conversation, kwargs)
        call = self.stub.ExecuteStream(request, timeout=self.timeout_s, metadata=self._metadata)
        async for chunk in call:
            yield chunk

    async def list_models(self) -> list[pb.Model]:
        return list((await self._call("ListModels", pb.ListModelsRequest())).models)

    async def get_model(self, name: str) -> pb.Model:
        return (await self._call("GetModel", pb.GetModelRequest(name=name))).model

    async def list_plugins(self) -> pb.ListPluginsResponse:
        return await self._call("ListPlugins", pb.ListPluginsRequest())

    async def submit_feedback(
        self,
        decision_id: str,
        score: float,
        *,
        success: bool = True,
        comment: str = "",
        source: str = "",
    ) -> pb.SubmitFeedbackResponse:
        request = _feedback_request(decision_id, score, success, comment, source)
        return await self._call("SubmitFeedback", request)

    async def get_usage(self) -> pb.GetUsageResponse:
        return await self._call("GetUsage", pb.GetUsageRequest())

    async def get_stats(self) -> pb.GetStatsResponse:
        return await self._call("GetStats", pb.GetStatsRequest())

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncModelRouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ModelRouterClient:
    """Blocking client with the same calls as :class:`AsyncModelRouterClient`."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        timeout_s: float | None = 30.0,
        channel: grpc.Channel | None = None,
    ) -> None:
        self.channel = channel or grpc.insecure_channel(target)
        self.stub = router_pb2_grpc.ModelRouterStub(self.channel)
        self.timeout_s = timeout_s
        self._metadata = _metadata(api_key)

    def _call(self, method: str, request: Any) -> Any:
        return getattr(self.stub, method)(request, timeout=self.timeout_s, metadata=self._metadata)

    def classify(self, conversation: Conversation, **constraints: Any) -> pb.ClassifyResponse:
        messages = build_messages(conversation)
        request = pb.ClassifyRequest(messages=messages, constraints=_constraints(constraints))
        return self._call("Classify", request)

    def route(self, conversation: Conversation, **kwargs: Unpack[RouteOptions]) -> pb.RouteResponse:
        return self._call("Route", _route_request(conversation, kwargs))

    def execute(
        self, conversation: Conversation, **kwargs: Unpack[ExecuteOptions]
    ) -> pb.ExecuteResponse:
        return self._call("Execute", _execute_request(conversation, kwargs))

    def execute_stream(
        self, conversation: Conversation, **kwargs: Unpack[ExecuteOptions]
    ) -> Iterator[pb.ExecuteStreamResponse]:
        request = _execute_request(conversation, kwargs)
        yield from self.stub.ExecuteStream(request, timeout=self.timeout_s, metadata=self._metadata)

    def list_models(self) -> list[pb.Model]:
        return list(self._call("ListModels", pb.ListModelsRequest()).models)

    def get_model(self, name: str) -> pb.Model:
        return self._call("GetModel", pb.GetModelRequest(name=name)).model

    def list_plugins(self) -> pb.ListPluginsResponse:
        return self._call("ListPlugins", pb.ListPluginsRequest())

    def submit_feedback(
        self,
        decision_id: str,
        score: float,
        *,
        success: bool = True,
        comment: str = "",
        source: str = "",
    ) -> pb.SubmitFeedbackResponse:
        request = _feedback_request(decision_id, score, success, comment, source)
        return self._call("SubmitFeedback", request)

    def get_usage(self) -> pb.GetUsageResponse:
        return self._call("GetUsage", pb.GetUsageRequest())

    def get_stats(self) -> pb.GetStatsResponse:
        return self._call("GetStats", pb.GetStatsRequest())

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ModelRouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
