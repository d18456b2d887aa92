"""Shared fixtures. The server fixtures come from ``modelrouter.testing`` (a pytest11 plugin)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelrouter.v1 import router_pb2 as pb

# Fixtures shared by several test modules: fake provider upstreams and storage backends.
pytest_plugins = ["tests.fake_upstreams", "tests.state_fixtures"]


def user(text: str) -> list[pb.Message]:
    return [pb.Message(role=pb.ROLE_USER, content=text)]


def rpc_error_details(error: grpc.aio.AioRpcError) -> dict[str, object]:
    """Decode the google.rpc details of a failed call, keyed by detail type name."""
    status = rpc_status.from_call(error)
    assert status is not None, "the server attached no google.rpc.Status"
    details: dict[str, object] = {}
    for any_detail in status.details:
        for detail_type in (
            error_details_pb2.BadRequest,
            error_details_pb2.ErrorInfo,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.ResourceInfo,
            error_details_pb2.QuotaFailure,
        ):
            if any_detail.Is(detail_type.DESCRIPTOR):
                detail = detail_type()
                any_detail.Unpack(detail)
                details[detail_type.DESCRIPTOR.name] = detail
    return details
