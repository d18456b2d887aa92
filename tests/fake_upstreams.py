"""In-process HTTP servers speaking the real OpenAI and Anthropic wire formats.

The official SDKs run end to end against them: JSON bodies, SSE streams (OpenAI ``data:``
chunks with usage in the final chunk; Anthropic ``message_start`` / ``content_block_delta`` /
``message_delta`` / ``message_stop`` events), error bodies, status codes and Retry-After.
Each server answers from a script of replies (then a default success) and records every
request. The fixtures are loaded for every test module by ``pytest_plugins`` in conftest.py.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class Reply:
    """A whole HTTP answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    #: Raw text instead of JSON (for malformed bodies).
    text: str | None = None


@dataclass
class Stream:
    """An SSE answer: ``events`` are written one by one; ``abort`` then drops the connection."""

    events: list[str]
    delay_s: float = 0.0
    abort: bool = False


@dataclass
class Hang:
    """Never answer; ``FakeUpstream.disconnected`` is set when the client goes away."""


Script = Reply | Stream | Hang


class FakeUpstream:
    def __init__(self, flavour: str, default: Callable[[dict[str, Any]], Script]) -> None:
        self.flavour = flavour
        self.default = default
        self.script: deque[Script] = deque()
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.disconnected = asyncio.Event()
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def enqueue(self, *replies: Script) -> None:
        self.script.extend(replies)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/messages", self._handle)
        # Cancel handlers when the client disconnects, as real servers stop generating.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}" + ("/v1" if self.flavour == "openai" else "")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            (request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        reply = self.script.popleft() if self.script else self.default(body)
        try:
            if isinstance(reply, Hang):
                await asyncio.sleep(3600)
            if isinstance(reply, Reply):
                await asyncio.sleep(reply.delay_s)
                if reply.text is not None:
                    return web.Response(
                        status=reply.status,
                        text=reply.text,
                        headers=reply.headers,
                        content_type="application/json",
                    )
                return web.json_response(reply.body, status=reply.status, headers=reply.headers)
            assert isinstance(reply, Stream)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for event in reply.events:
                await response.write(event.encode())
                await asyncio.sleep(reply.delay_s)
            if reply.abort:
                request.transport.close()  # type: ignore[union-attr]
                return response
            await response.write_eof()
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnected.set()
            raise


# -- OpenAI wire format ----------------------------------------------------------------------


def openai_completion(
    text: str,
    *,
    model: str = "gpt-test",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_chunks(
    pieces: list[str],
    *,
    model: str = "gpt-test",
    prompt_tokens: int = 11,
    completion_tokens: int | None = None,
    done: bool = True,
) -> list[str]:
    """SSE ``data:`` lines: role chunk, one chunk per piece, finish chunk, usage chunk, [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    if not done:
        return [f"data: {json.dumps(e)}\n\n" for e in events]
    events.append(chunk({}, "stop"))
    used = len(pieces) if completion_tokens is None else completion_tokens
    events.append(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": used,
                "total_tokens": prompt_tokens + used,
            },
        }
    )
    return [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    return Reply(
        status,
        {"error": {"message": message, "type": type_, "param": None, "code": code}},
        headers or {},
    )


def _openai_default(body: dict[str, Any]) -> Script:
    text = f"echo: {body['messages'][-1]['content']}"
    if body.get("stream"):
        return Stream(openai_chunks(text.split(" "), model=body["model"]))
    return Reply(body=openai_completion(text, model=body["model"]))


# -- Anthropic wire format -------------------------------------------------------------------


def anthropic_message(
    text: str,
    *,
    model: str = "claude-test",
    input_tokens: int = 13,
    output_tokens: int = 5,
    stop_reason: str = "end_turn",
) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def anthropic_events(
    pieces: list[str],
    *,
    model: str = "claude-test",
    input_tokens: int = 13,
    output_tokens: int | None = None,
    done: bool = True,
) -> list[str]:
    start = anthropic_message("", model=model, input_tokens=input_tokens, output_tokens=1)
    start.update(content=[], stop_reason=None)
    events = [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _sse("ping", {"type": "ping"}),
    ]
    events += [
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        for piece in pieces
    ]
    if not done:
        return events
    used = len(pieces) if output_tokens is None else output_tokens
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": used},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


def anthropic_error_event(type_: str, message: str) -> str:
    return _sse("error", {"type": "error", "error": {"type": type_, "message": message}})


def anthropic_error(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    return Reply(
        status, {"type": "error", "error": {"type": type_, "message": message}}, headers or {}
    )


def _anthropic_default(body: dict[str, Any]) -> Script:
    text = f"echo: {body['messages'][-1]['content']}"
    if body.get("stream"):
        return Stream(anthropic_events(text.split(" "), model=body["model"]))
    return Reply(body=anthropic_message(text, model=body["model"]))


@pytest.fixture
async def openai_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream("openai", _openai_default)
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def anthropic_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream("anthropic", _anthropic_default)
    await upstream.start()
    yield upstream
    await upstream.stop()
