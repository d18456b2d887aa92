"""Who may call: API keys to tenants, and the server's TLS credentials.

API keys arrive as ``authorization: Bearer <key>`` metadata (gRPC) or header (HTTP) and are
stored as SHA-256. With auth off every call runs as tenant ``default``. Health and
reflection are separate services and never ask for a key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc

from .config import AuthConfig
from .errors import ConfigError, RateLimited, Unauthenticated

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


def server_credentials(config: AuthConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from ``[auth] tls_*`` files; ``None`` for plaintext.

    With ``tls_client_ca_file`` the server requires client certificates signed by it
    (mutual TLS).
    """
    cert, key, client_ca = config.tls_cert_file, config.tls_key_file, config.tls_client_ca_file
    if cert is None and key is None:
        if client_ca is not None:
            # Serving plaintext while the operator asked for client certificates would
            # silently drop the protection they configured.
            raise ConfigError(
                "auth.tls_client_ca_file: needs auth.tls_cert_file and auth.tls_key_file "
                "(mutual TLS cannot run without a server certificate)"
            )
        return None
    if cert is None or key is None:
        missing = "auth.tls_cert_file" if cert is None else "auth.tls_key_file"
        raise ConfigError(f"{missing}: required when the other TLS file is set")

    def read(key: str, path: str) -> bytes:
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as error:
            raise ConfigError(f"auth.{key}: cannot read {path!r}: {error.strerror}") from None

    pair = (read("tls_key_file", key), read("tls_cert_file", cert))
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=read("tls_client_ca_file", client_ca) if client_ca else None,
        require_client_auth=client_ca is not None,
    )


class RateLimiter:
    """A token bucket per tenant: ``rate`` requests per second on average, bursts of up to
    ``burst``. Kept in this process (per replica), so admitting a call costs no round trip.
    ``rate <= 0`` admits everything."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        #: Tenant -> (tokens left, when they were counted).
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, tenant: str) -> None:
        """Take one token for ``tenant``; ``RateLimited`` (with the wait) when none is left."""
        if self.rate <= 0:
            return
        now = self.clock()
        tokens, then = self._buckets.get(tenant, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[tenant] = (tokens, now)
            raise RateLimited(tenant, self.rate, (1.0 - tokens) / self.rate)
        self._buckets[tenant] = (tokens - 1.0, now)
