"""Python clients for modelrouter: thin, typed wrappers over the generated gRPC stubs.

    from modelrouter_client import ModelRouterClient
    with ModelRouterClient("localhost:50051") as client:
        decision = client.route("Prove that sqrt(2) is irrational", min_quality=0.8)
        print(decision.selected.model, decision.reason)

Responses are the protobuf messages of ``modelrouter.v1``. Errors are ``grpc.RpcError``;
``error_details(err)`` decodes the google.rpc details the server attaches.
"""

from __future__ import annotations

from ._client import AsyncModelRouterClient, ModelRouterClient, build_messages, error_details

__all__ = ["AsyncModelRouterClient", "ModelRouterClient", "build_messages", "error_details"]
