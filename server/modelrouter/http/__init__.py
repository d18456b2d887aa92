"""The OpenAI-compatible HTTP face and the operator dashboard (see docs/http.md).

``create_app(HttpServices(...))`` builds the ASGI app over the services ``create_server``
built once for both faces; ``start_http`` serves it on uvicorn in the same event loop.
"""

from __future__ import annotations

from .app import HttpServices, create_app
from .serve import HttpServer, start_http

__all__ = ["HttpServer", "HttpServices", "create_app", "start_http"]
