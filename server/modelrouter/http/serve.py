"""Running the HTTP face on uvicorn, inside the gRPC server's event loop.

uvicorn's ``Server.serve`` would install its own signal handlers; the gRPC server owns
SIGTERM and SIGINT (it drains both faces), so this uses uvicorn's ``startup`` /
``main_loop`` / ``shutdown`` steps on a socket bound here: the bound port is read back
(port 0 picks a free one), ``SO_REUSEPORT`` lets ``serve --workers N`` share it, and a
port in use is an error naming ``[http] port`` instead of uvicorn's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

import uvicorn
from starlette.types import ASGIApp

from ..config import AuthConfig
from ..errors import ConfigError

log = logging.getLogger(__name__)


class HttpServer:
    """A started uvicorn server; ``port`` is the bound port."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, task: asyncio.Task[None]):
        self._server = server
        self._sock = sock
        self._task = task
        self.port: int = sock.getsockname()[1]

    async def stop(self, grace: float) -> None:
        """Stop accepting, give open requests ``grace`` seconds, then close."""
        server = self._server
        server.config.timeout_graceful_shutdown = max(int(grace + 0.999), 0) or None
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if grace <= 0:
            server.force_exit = True
        await server.shutdown(sockets=[self._sock])
        self._sock.close()


async def start_http(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    auth: AuthConfig | None = None,
) -> HttpServer:
    """Bind ``host:port`` and serve ``app`` on the running loop. TLS (and mutual TLS)
    follows ``[auth] tls_*`` like the gRPC face."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets whose
    # proto says TCP, and without it every answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"http.port: cannot bind {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    kwargs: dict[str, object] = {}
    if auth is not None and auth.tls_cert_file and auth.tls_key_file:
        kwargs = {"ssl_certfile": auth.tls_cert_file, "ssl_keyfile": auth.tls_key_file}
        if auth.tls_client_ca_file:
            kwargs |= {"ssl_ca_certs": auth.tls_client_ca_file, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    config = uvicorn.Config(
        app,
        lifespan="off",
        # The app logs what matters; uvicorn's access log would print every path and the
        # default config would replace the server's logging setup.
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=30,
        **kwargs,  # type: ignore[arg-type]
    )
    config.load()
    server = uvicorn.Server(config)
    # What Server._serve does before startup (lifespan "off": a no-op).
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    task = asyncio.create_task(server.main_loop(), name="modelrouter-http")
    return HttpServer(server, sock, task)
