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


def _constraints(**kwargs: Any) -> pb.Constraints:
    return pb.Constraints(**{k: v for k, v in kwargs.items() if v is not None})


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


class AsyncModelRouterClient:
    """asyncio client. Keyword arguments of the calls are ``Constraints`` fields."""

    def __init__(self, target: str, *, channel: grpc.aio.Channel | None = None) -> None:
        self.channel = channel or grpc.aio.insecure_channel(target)
        self.stub = router_pb2_grpc.ModelRouterStub(self.channel)

    async def classify(self, conversation: Conversation, **constraints: Any) -> pb.ClassifyResponse:
        return await self.stub.Classify(
            pb.ClassifyRequest(
                messages=build_messages(conversation), constraints=_constraints(**constraints)
            )
        )

    async def route(self, conversation: Conversation, **constraints: Any) -> pb.RouteResponse:
        return await self.stub.Route(
            pb.RouteRequest(
                messages=build_messages(conversation), constraints=_constraints(**constraints)
            )
        )

    async def execute(
        self, conversation: Conversation, *, model: str = "", **constraints: Any
    ) -> pb.ExecuteResponse:
        return await self.stub.Execute(
            pb.ExecuteRequest(
                messages=build_messages(conversation),
                model=model,
                constraints=_constraints(**constraints),
            )
        )

    async def execute_stream(
        self, conversation: Conversation, *, model: str = "", **constraints: Any
    ) -> AsyncIterator[pb.ExecuteStreamResponse]:
        request = pb.ExecuteRequest(
            messages=build_messages(conversation),
            model=model,
            constraints=_constraints(**constraints),
        )
        async for chunk in self.stub.ExecuteStream(request):
            yield chunk

    async def list_models(self) -> list[pb.Model]:
        return list((await self.stub.ListModels(pb.ListModelsRequest())).models)

    async def get_model(self, name: str) -> pb.Model:
        return (await self.stub.GetModel(pb.GetModelRequest(name=name))).model

    async def list_plugins(self) -> pb.ListPluginsResponse:
        return await self.stub.ListPlugins(pb.ListPluginsRequest())

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncModelRouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ModelRouterClient:
    """Blocking client with the same calls as :class:`AsyncModelRouterClient`."""

    def __init__(self, target: str, *, timeout_s: float | None = 30.0) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = router_pb2_grpc.ModelRouterStub(self.channel)
        self.timeout_s = timeout_s

    def classify(self, conversation: Conversation, **constraints: Any) -> pb.ClassifyResponse:
        return self.stub.Classify(
            pb.ClassifyRequest(
                messages=build_messages(conversation), constraints=_constraints(**constraints)
            ),
            timeout=self.timeout_s,
        )

    def route(self, conversation: Conversation, **constraints: Any) -> pb.RouteResponse:
        return self.stub.Route(
            pb.RouteRequest(
                messages=build_messages(conversation), constraints=_constraints(**constraints)
            ),
            timeout=self.timeout_s,
        )

    def execute(
        self, conversation: Conversation, *, model: str = "", **constraints: Any
    ) -> pb.ExecuteResponse:
        return self.stub.Execute(
            pb.ExecuteRequest(
                messages=build_messages(conversation),
                model=model,
                constraints=_constraints(**constraints),
            ),
            timeout=self.timeout_s,
        )

    def execute_stream(
        self, conversation: Conversation, *, model: str = "", **constraints: Any
    ) -> Iterator[pb.ExecuteStreamResponse]:
        request = pb.ExecuteRequest(
            messages=build_messages(conversation),
            model=model,
            constraints=_constraints(**constraints),
        )
        yield from self.stub.ExecuteStream(request, timeout=self.timeout_s)

    def list_models(self) -> list[pb.Model]:
        return list(self.stub.ListModels(pb.ListModelsRequest(), timeout=self.timeout_s).models)

    def get_model(self, name: str) -> pb.Model:
        return self.stub.GetModel(pb.GetModelRequest(name=name), timeout=self.timeout_s).model

    def list_plugins(self) -> pb.ListPluginsResponse:
        return self.stub.ListPlugins(pb.ListPluginsRequest(), timeout=self.timeout_s)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ModelRouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
