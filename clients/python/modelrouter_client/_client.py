from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import message as proto_message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

_ROLES = {"system": pb.ROLE_SYSTEM, "user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT}
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


def _execute_request(
    conversation: Conversation, model: str, temperature: float | None, constraints: dict[str, Any]
) -> pb.ExecuteRequest:
    request = pb.ExecuteRequest(
        messages=build_messages(conversation), model=model, constraints=_constraints(constraints)
    )
    if temperature is not None:
        request.temperature = temperature
    return request


def _feedback_request(
    decision_id: str, score: float, success: bool, comment: str, source: str
) -> pb.SubmitFeedbackRequest:
    return pb.SubmitFeedbackRequest(
        decision_id=decision_id, score=score, success=success, comment=comment, source=source
    )


def _metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {api_key}"),) if api_key else None


class AsyncModelRouterClient:
    """asyncio client. Keyword arguments of the calls are ``Constraints`` fields.

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

    async def route(self, conversation: Conversation, **constraints: Any) -> pb.RouteResponse:
        messages = build_messages(conversation)
        request = pb.RouteRequest(messages=messages, constraints=_constraints(constraints))
        return await self._call("Route", request)

    async def execute(
        self,
        conversation: Conversation,
        *,
        model: str = "",
        temperature: float | None = None,
        **constraints: Any,
    ) -> pb.ExecuteResponse:
        request = _execute_request(conversation, model, temperature, constraints)
        return await self._call("Execute", request)

    async def execute_stream(
        self,
        conversation: Conversation,
        *,
        model: str = "",
        temperature: float | None = None,
        **constraints: Any,
    ) -> AsyncIterator[pb.ExecuteStreamResponse]:
        request = _execute_request(conversation, model, temperature, constraints)
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

    def route(self, conversation: Conversation, **constraints: Any) -> pb.RouteResponse:
        messages = build_messages(conversation)
        request = pb.RouteRequest(messages=messages, constraints=_constraints(constraints))
        return self._call("Route", request)

    def execute(
        self,
        conversation: Conversation,
        *,
        model: str = "",
        temperature: float | None = None,
        **constraints: Any,
    ) -> pb.ExecuteResponse:
        return self._call(
            "Execute", _execute_request(conversation, model, temperature, constraints)
        )

    def execute_stream(
        self,
        conversation: Conversation,
        *,
        model: str = "",
        temperature: float | None = None,
        **constraints: Any,
    ) -> Iterator[pb.ExecuteStreamResponse]:
        request = _execute_request(conversation, model, temperature, constraints)
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
