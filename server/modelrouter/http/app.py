"""The HTTP face: an ASGI app (Starlette) over the same pipeline as the gRPC servicer.

Every route goes through :meth:`HttpFace.serve`: it opens the call's SERVER span,
authenticates the ``Authorization: Bearer`` key with the gRPC face's ``Authenticator``,
turns errors into OpenAI-shaped JSON (:mod:`.errors`) and counts the call. Bodies are read
up to ``[server] max_message_bytes`` (the gRPC limit) before anything parses them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .. import limits
from ..base import ToolCallDelta
from ..catalog import Catalog
from ..config import Config
from ..decision import Candidate, ExecutionSummary, StreamOpened
from ..errors import InvalidRequest, NotFound
from ..pipeline import Call, Pipeline
from ..security import DEFAULT_TENANT, Authenticator, RateLimiter
from ..shadow import ShadowStats
from ..state import StateServices
from ..status import grpc_code
from ..telemetry import Telemetry
from ..v1 import router_pb2 as pb
from . import anthropic, dashboard, openai
from .errors import HttpError, http_error
from .telemetry import HttpCall

log = logging.getLogger(__name__)

JSON = "application/json"
#: OpenAI's SDKs send their client timeout (seconds) in this header: the caller's deadline.
TIMEOUT_HEADER = "x-stainless-timeout"

Handler = Callable[[Request, Call], Awaitable[Response]]


@dataclass(frozen=True)
class HttpServices:
    """What the HTTP face uses, built once by ``create_server`` (the gRPC face's too)."""

    config: Config
    pipeline: Pipeline
    catalog: Catalog
    state: StateServices
    telemetry: Telemetry
    authenticator: Authenticator
    #: The per-tenant request rate (``[limits] tenant_requests_per_second``), shared with
    #: the gRPC face; ``None``: unlimited.
    rate_limiter: RateLimiter | None = None
    #: Live quality from shadow evaluation, for the dashboard (``None``: not shown).
    shadow: ShadowStats | None = None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers=headers, media_type=JSON)


class HttpFace:
    """The routes; one instance per server."""

    def __init__(self, services: HttpServices) -> None:
        self.s = services
        self.max_body = services.config.server.max_message_bytes

    async def serve(
        self, request: Request, method: str, handler: Handler, anthropic_errors: bool = False
    ) -> Response:
        headers = request.headers
        server = request.scope.get("server") or ("", 0)
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        call = HttpCall(
            self.s.telemetry, method, request.method, path, headers, int(server[1] or 0)
        )
        tenant = DEFAULT_TENANT
        try:
            tenant = self.s.authenticator.tenant_for(_credentials(headers))
            if self.s.rate_limiter is not None and method != "GetStats":
                self.s.rate_limiter.admit(tenant)
            response = await handler(request, Call(method, tenant, call.span, _timeout(headers)))
        except asyncio.CancelledError:
            call.end(499, grpc.StatusCode.CANCELLED, tenant)
            raise
        except Exception as error:
            status, body, extra = http_error(error)
            code = (
                grpc.StatusCode.INVALID_ARGUMENT
                if isinstance(error, HttpError)
                else grpc_code(error)
            )
            call.end(status, code, tenant)
            if anthropic_errors:
                body = anthropic.error_body(status, body)
            return Response(body, status, headers=extra, media_type=JSON)
        if isinstance(response, _Stream):
            call.method = "ExecuteStream"
            response.on_end = lambda status, code: call.end(status, code, tenant)
        else:
            call.end(response.status_code, grpc.StatusCode.OK, tenant)
        return response

    async def body(self, request: Request) -> Any:
        """The JSON body, refused (413) past ``max_message_bytes`` before it is parsed."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise _too_large(self.max_body)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as error:
            detail = str(error) if isinstance(error, ValueError) else "nested too deeply"
            raise HttpError(400, f"the body is not valid JSON: {detail}", "invalid_json") from None

    async def _chat_request(self, request: Request, call: Call) -> openai.ChatRequest:
        chat = openai.chat_request(
            await self.body(request),
            request.headers,
            tenant=call.tenant,
            input_limits=self.s.config.limits,
        )
        pinned = chat.request.model
        if pinned is not None and pinned not in self.s.catalog.models:
            # OpenAI answers an unknown model with 404 (gRPC says INVALID_ARGUMENT on model).
            raise NotFound("model", pinned, [openai.AUTO, *self.s.catalog.models])
        return chat

    async def chat(self, request: Request, call: Call) -> Response:
        chat = await self._chat_request(request, call)
        if chat.stream:
            call = Call("ExecuteStream", call.tenant, call.span, call.timeout_s)
            events = self.s.pipeline.stream(call, chat.request, temperature=chat.temperature)
            first, headers = await _open(events)
            return _Stream(
                first, events, openai.ChunkWriter(chat.model, chat.include_usage), headers
            )
        summary = await self.s.pipeline.execute(call, chat.request, temperature=chat.temperature)
        return json_response(openai.completion(summary), headers=_router_headers(summary))

    async def messages(self, request: Request, call: Call) -> Response:
        """Anthropic's Messages API over the same pipeline."""
        chat = anthropic.messages_request(
            await self.body(request), tenant=call.tenant, input_limits=self.s.config.limits
        )
        pinned = chat.request.model
        if pinned is not None and pinned not in self.s.catalog.models:
            raise NotFound("model", pinned, [openai.AUTO, *self.s.catalog.models])
        if chat.stream:
            call = Call("ExecuteStream", call.tenant, call.span, call.timeout_s)
            events = self.s.pipeline.stream(call, chat.request, temperature=chat.temperature)
            first, headers = await _open(events)
            return _Stream(first, events, anthropic.EventWriter(chat.model), headers)
        summary = await self.s.pipeline.execute(call, chat.request, temperature=chat.temperature)
        return json_response(anthropic.message(summary), headers=_router_headers(summary))

    async def route(self, request: Request, call: Call) -> Response:
        chat = await self._chat_request(request, call)
        decision = await self.s.pipeline.route(call, chat.request)
        selection = decision.selection
        classification = decision.classification

        def candidate(c: Candidate, role: str) -> dict[str, Any]:
            reason = self.s.catalog.not_executable_reason(c.model)
            return {
                "model": c.model.name,
                "provider": c.model.provider,
                "role": role,
                "estimated_cost_usd": c.estimated_cost_usd,
                "estimated_latency_ms": c.estimated_latency_ms,
                "quality": c.quality,
                "executable": reason is None,
                "not_executable_reason": reason,
            }

        chosen = {c.model.name for c in selection.candidates}
        rules = dict(selection.excluded)
        excluded = [
            {
                "model": name,
                "provider": spec.provider,
                "reason": f"excluded by {rules[name]}"
                if name in rules
                else self.s.catalog.unavailable_reason(spec) or "steered out by the budget",
            }
            for name, spec in self.s.catalog.models.items()
            if name not in chosen
        ]
        body = {
            "object": "modelrouter.decision",
            "decision_id": decision.decision_id,
            "model": selection.selected.model.name,
            "fallbacks": [c.model.name for c in selection.fallbacks],
            "reason": selection.reason,
            "explored": decision.explored,
            "classification": {
                "complexity": classification.complexity.name.lower(),
                "task_type": classification.task_type.name.lower(),
                "score": classification.score,
                "confidence": classification.confidence,
                "classifier": classification.classifier,
            },
            "estimated_input_tokens": selection.input_tokens,
            "max_output_tokens": selection.max_output_tokens,
            "candidates": [candidate(selection.selected, "selected")]
            + [candidate(c, "fallback") for c in selection.fallbacks],
            "excluded": excluded,
        }
        headers = {
            "x-modelrouter-decision-id": decision.decision_id,
            "x-modelrouter-model": selection.selected.model.name,
        }
        return json_response(body, headers=headers)

    async def feedback(self, request: Request, call: Call) -> Response:
        body = await self.body(request)
        if not isinstance(body, dict):
            raise InvalidRequest.single("body", "must be a JSON object")
        message = pb.SubmitFeedbackRequest()
        for key, kind, what in (
            ("decision_id", str, "a string"),
            ("score", (int, float), "a number in [0, 1]"),
            ("success", bool, "a boolean"),
            ("comment", str, "a string"),
            ("source", str, "a string"),
        ):
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise InvalidRequest.single(key, f"must be {what}")
            setattr(message, key, value)
        if not message.decision_id:
            raise InvalidRequest.single("decision_id", "required: the id a decision answered")
        limits.check_request(message, self.s.config.limits)
        created = await self.s.state.feedback.submit(
            call.tenant,
            message.decision_id,
            message.score,
            message.success,
            message.comment,
            message.source,
        )
        return json_response({"decision_id": message.decision_id, "duplicate": not created})

    async def models(self, request: Request, call: Call) -> Response:
        catalog = self.s.catalog
        data = [
            {
                "id": openai.AUTO,
                "object": "model",
                "created": 0,
                "owned_by": "modelrouter",
                "modelrouter": {"available": True, "description": "routes each request"},
            }
        ]
        data += [_model(spec, catalog.unavailable_reason(spec)) for spec in catalog.models.values()]
        return json_response({"object": "list", "data": data})

    async def model(self, request: Request, call: Call) -> Response:
        name = request.path_params["model"]
        if name == openai.AUTO:
            return json_response(
                {"id": openai.AUTO, "object": "model", "created": 0, "owned_by": "modelrouter"}
            )
        spec = self.s.catalog.get(name)  # NotFound -> 404
        return json_response(_model(spec, self.s.catalog.unavailable_reason(spec)))

    async def dashboard_data(self, request: Request, call: Call) -> Response:
        admin = call.tenant in self.s.config.http.admin_tenants
        everyone = admin or not self.s.authenticator.enabled
        data = await dashboard.data(
            self.s.telemetry.stats,
            self.s.state,
            self.s.config,
            tenant=None if everyone else call.tenant,
            viewer=call.tenant,
            shadow=self.s.shadow,
        )
        return json_response(data, headers={"cache-control": "no-store"})


class _Stream(StreamingResponse):
    """An SSE answer; ``on_end(http_status, grpc_code)`` is called once it is over."""

    def __init__(
        self,
        first: str | ToolCallDelta | ExecutionSummary,
        events: AsyncIterator[Any],
        writer: openai.ChunkWriter | anthropic.EventWriter,
        headers: dict[str, str],
    ) -> None:
        self.on_end: Callable[[int, grpc.StatusCode], None] = lambda status, code: None
        super().__init__(
            self._lines(first, events, writer),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
        )

    async def _lines(
        self,
        first: str | ToolCallDelta | ExecutionSummary,
        events: AsyncIterator[Any],
        writer: openai.ChunkWriter | anthropic.EventWriter,
    ) -> AsyncIterator[bytes]:
        status, code = 200, grpc.StatusCode.OK
        try:
            event = first
            while True:
                if isinstance(event, ExecutionSummary):
                    yield writer.end(event)
                    break
                yield writer.event(event)
                event = await anext(events)
        except asyncio.CancelledError:
            status, code = 499, grpc.StatusCode.CANCELLED
            raise
        except Exception as error:
            # The headers are out: the error travels as a data line (the SDKs raise it).
            status, body, _ = http_error(error)
            code = grpc_code(error)
            yield writer.error(status, body)
        finally:
            # A client that went away cancels this generator's scope (anyio cancellation
            # is level-triggered): shield the pipeline's cleanup, which settles the budget
            # hold and records the decision.
            with anyio.CancelScope(shield=True):
                await events.aclose()  # type: ignore[attr-defined]
            self.on_end(status, code)


def _model(spec: Any, unavailable_reason: str | None) -> dict[str, Any]:
    return {
        "id": spec.name,
        "object": "model",
        "created": 0,
        "owned_by": spec.provider,
        "modelrouter": {
            "available": unavailable_reason is None,
            "unavailable_reason": unavailable_reason,
            "provider": spec.provider,
            "upstream_model": spec.upstream_model,
            "quality": spec.quality,
            "input_price_usd_per_mtok": spec.input_price_usd_per_mtok,
            "output_price_usd_per_mtok": spec.output_price_usd_per_mtok,
            "context_window_tokens": spec.context_window_tokens,
            "capabilities": sorted(spec.capabilities),
            "max_complexity": spec.max_complexity.name.lower(),
        },
    }


async def _open(
    events: AsyncIterator[Any],
) -> tuple[str | ToolCallDelta | ExecutionSummary, dict[str, str]]:
    """Read a stream up to its first answer event. Errors before it (validation, budget,
    no model, every attempt failed) are ordinary HTTP errors, not a broken stream; the
    model that answers is known by then, so it goes in the headers (the cost comes with
    the last chunk)."""
    try:
        opened = await anext(events)
        first = await anext(events) if isinstance(opened, StreamOpened) else opened
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    headers = {}
    if isinstance(opened, StreamOpened):
        headers = {
            "x-modelrouter-decision-id": opened.decision.decision_id,
            "x-modelrouter-model": opened.model,
        }
    return first, headers


def _router_headers(summary: ExecutionSummary) -> dict[str, str]:
    return {
        "x-modelrouter-decision-id": summary.decision.decision_id,
        "x-modelrouter-model": summary.model,
        "x-modelrouter-cost-usd": f"{summary.cost_usd:.9f}",
    }


def _credentials(headers: Any) -> list[tuple[str, str]]:
    """The call's key as ``authorization`` metadata: ``Authorization: Bearer`` (OpenAI's
    SDKs), or ``x-api-key`` (Anthropic's) when that is all there is."""
    if "authorization" not in headers and "x-api-key" in headers:
        return [("authorization", f"Bearer {headers['x-api-key']}")]
    return list(headers.items())


def _timeout(headers: Any) -> float | None:
    value = headers.get(TIMEOUT_HEADER)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds > 0 else None


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413, f"the body is over {limit} bytes (server.max_message_bytes)", "request_too_large"
    )


def create_app(services: HttpServices) -> Starlette:
    """The ASGI app of the HTTP face and the dashboard over ``services``."""
    face = HttpFace(services)

    def route(
        path: str,
        method: str,
        handler: Handler,
        http_method: str = "POST",
        anthropic_errors: bool = False,
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await face.serve(request, method, handler, anthropic_errors)

        return Route(path, endpoint, methods=[http_method])

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            message, code = f"no route {request.method} {request.url.path}", "unknown_url"
        elif status == 405:
            message, code = f"{request.method} is not allowed on {request.url.path}", "method"
        else:
            message, code = "internal error; see the server log", "internal"
        body = json.dumps(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error" if status < 500 else "server_error",
                    "param": None,
                    "code": code,
                }
            }
        )
        return Response(body, status, media_type=JSON)

    routes = [
        route("/v1/chat/completions", "Execute", face.chat),
        route("/v1/messages", "Execute", face.messages, anthropic_errors=True),
        route("/v1/route", "Route", face.route),
        route("/v1/feedback", "SubmitFeedback", face.feedback),
        route("/v1/models", "ListModels", face.models, "GET"),
        route("/v1/models/{model:path}", "GetModel", face.model, "GET"),
        route("/dashboard/data", "GetStats", face.dashboard_data, "GET"),
        *dashboard.page_routes(),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, Exception: not_found},
    )
