"""API keys to tenants: ``authorization: Bearer <key>`` metadata, keys stored as SHA-256.

With auth off every call runs as tenant ``default``. Health and reflection are separate
services and never pass through here.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc

from ..config import AuthConfig
from ..errors import Unauthenticated

DEFAULT_TENANT = "default"


def hash_key(key: str) -> str:
    """The hex SHA-256 to put in ``[[auth.keys]] sha256``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Authenticator:
    def __init__(self, config: AuthConfig) -> None:
        self.enabled = config.enabled
        self._tenants = {k.sha256: k.tenant for k in config.keys}

    def tenant_for(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """The tenant of a call's metadata; raises ``Unauthenticated`` when auth is on and
        the key is missing or unknown."""
        if not self.enabled:
            return DEFAULT_TENANT
        header = next((v for k, v in metadata or () if k.lower() == "authorization"), None)
        if header is None:
            raise Unauthenticated("missing 'authorization: Bearer <api key>' metadata")
        if isinstance(header, bytes):
            header = header.decode("utf-8", "replace")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("authorization metadata must be 'Bearer <api key>'")
        tenant = self._tenants.get(hash_key(key.strip()))
        if tenant is None:
            raise Unauthenticated("unknown API key")
        return tenant


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls to the ``protected`` services that carry no valid API key.

    Other services (health, reflection) pass untouched. The servicer asks the same
    ``Authenticator`` for the tenant of each call.
    """

    def __init__(self, authenticator: Authenticator, protected: Iterable[str]) -> None:
        self.authenticator = authenticator
        self.prefixes = tuple(f"/{service}/" for service in protected)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        if (
            handler is None
            or not self.authenticator.enabled
            or not method.startswith(self.prefixes)
        ):
            return handler
        try:
            self.authenticator.tenant_for(handler_call_details.invocation_metadata)  # type: ignore[attr-defined]
        except Unauthenticated as error:
            return _rejecting(handler, error)
        return handler


def _rejecting(handler: grpc.RpcMethodHandler, error: Unauthenticated) -> grpc.RpcMethodHandler:
    from grpc_status import rpc_status

    from ..status import to_status

    status = rpc_status.to_status(to_status(error))

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort_with_status(status)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort_with_status(status)
        yield  # pragma: no cover - makes this an async generator

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(stream, **serializers)
    return grpc.unary_unary_rpc_method_handler(unary, **serializers)


def server_credentials(config: AuthConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from ``[auth] tls_*`` files; ``None`` for plaintext.

    With ``tls_client_ca_file`` the server requires client certificates signed by it
    (mutual TLS).
    """
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    from pathlib import Path

    from ..errors import ConfigError

    def read(key: str, path: str) -> bytes:
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as error:
            raise ConfigError(f"auth.{key}: cannot read {path!r}: {error.strerror}") from None

    pair = (read("tls_key_file", config.tls_key_file), read("tls_cert_file", config.tls_cert_file))
    client_ca = config.tls_client_ca_file
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=read("tls_client_ca_file", client_ca) if client_ca else None,
        require_client_auth=client_ca is not None,
    )
