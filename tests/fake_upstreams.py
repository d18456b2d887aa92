"""In-process HTTP servers speaking the real OpenAI and Anthropic wire formats.

The official SDKs run end to end against them: JSON bodies, SSE streams (OpenAI ``data:``
chunks with usage in the final chunk; Anthropic ``message_start`` / ``content_block_delta`` /
``message_delta`` / ``message_stop`` events), error bodies, status codes and Retry-After.
Each server answers from a script of replies (then a default success) and records every
request. The fixtures are loaded for every test module by ``pytest_plugins`` in conftest.py.

Tool calls: ``openai_completion(tool_calls=...)`` and ``anthropic_message(tool_uses=...)``
answer with calls; ``openai_tool_call_chunks`` streams several calls with interleaved
indices (as OpenAI may), ``anthropic_tool_events`` streams ``tool_use`` blocks with their
input in ``input_json_delta`` pieces. ``FakeUpstream.bodies`` are the request bodies sent.
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

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON body of every request received, in order."""
        return [body for _, _, body in self.requests]

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
    text: str | None,
    *,
    model: str = "gpt-test",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    finish_reason: str | None = None,
    tool_calls: list[tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """A chat.completion; ``tool_calls`` are ``(id, name, arguments_json)`` (the finish
    reason is then ``tool_calls`` unless given)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}
            for id_, name, arguments in tool_calls
        ]
    finish_reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
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


def openai_tool_call_chunks(
    calls: list[tuple[str, str, str]],
    *,
    pieces: int = 3,
    model: str = "gpt-test",
    prompt_tokens: int = 11,
    completion_tokens: int = 9,
) -> list[str]:
    """SSE lines streaming ``calls`` (``(id, name, arguments_json)``): every call's first
    piece (index, id, name) in one chunk, then each call's arguments cut in ``pieces``
    fragments, round robin across calls so that indices interleave, then the finish chunk
    (``tool_calls``), the usage chunk and [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def cut(text: str) -> list[str]:
        size = max(1, -(-len(text) // pieces))
        return [text[i : i + size] for i in range(0, len(text), size)]

    events = [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": index,
                        "id": id_,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                    for index, (id_, name, _) in enumerate(calls)
                ],
            }
        )
    ]
    fragments = [cut(arguments) for _, _, arguments in calls]
    for round_ in range(max((len(f) for f in fragments), default=0)):
        for index, pieces_of_call in reversed(list(enumerate(fragments))):
            if round_ < len(pieces_of_call):
                events.append(
                    chunk(
                        {
                            "tool_calls": [
                                {"index": index, "function": {"arguments": pieces_of_call[round_]}}
                            ]
                        }
                    )
                )
    events.append(chunk({}, "tool_calls"))
    events.append(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )
    return [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]


def last_text(body: dict[str, Any]) -> str:
    """The text of a request's last message, whatever its shape (string or content parts)."""
    content = body["messages"][-1].get("content")
    if isinstance(content, list):
        return " ".join(
            str(part.get("text") or part.get("content") or "")
            for part in content
            if isinstance(part, dict)
        )
    return str(content or "")


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
    text = f"echo: {last_text(body)}"
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
    stop_reason: str | None = None,
    tool_uses: list[tuple[str, str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A Messages API answer; ``tool_uses`` are ``(id, name, input)`` blocks after the text
    (the stop reason is then ``tool_use`` unless given)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for id_, name, input_ in tool_uses or ():
        content.append({"type": "tool_use", "id": id_, "name": name, "input": input_})
    if not tool_uses and not text:
        content = [{"type": "text", "text": text}]
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"),
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


def anthropic_tool_events(
    text_pieces: list[str],
    tool_uses: list[tuple[str, str, str]],
    *,
    pieces: int = 3,
    model: str = "claude-test",
    input_tokens: int = 13,
    output_tokens: int = 9,
) -> list[str]:
    """SSE events: a text block streaming ``text_pieces`` (none when empty), then one
    ``tool_use`` block per ``(id, name, input_json)`` with its input cut in ``pieces``
    ``input_json_delta`` fragments, then ``message_delta`` (stop reason ``tool_use``)."""
    start = anthropic_message("", model=model, input_tokens=input_tokens, output_tokens=1)
    start.update(content=[], stop_reason=None)
    events = [_sse("message_start", {"type": "message_start", "message": start})]
    index = 0
    if text_pieces:
        events.append(
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        events += [
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in text_pieces
        ]
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for id_, name, input_json in tool_uses:
        block = {"type": "tool_use", "id": id_, "name": name, "input": {}}
        events.append(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        size = max(1, -(-len(input_json) // pieces))
        for i in range(0, len(input_json), size):
            events.append(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": input_json[i : i + size],
                        },
                    },
                )
            )
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events += [
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
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
    text = f"echo: {last_text(body)}"
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


def upstream_catalog(flavour: str, base_url: str) -> str:
    """Config for one provider of ``flavour`` (``openai`` or ``anthropic``) at ``base_url``
    (key in ``UP_KEY``) with a tool-capable model and a cheaper text-only one."""
    return f"""
[providers.up]
type = "{flavour}"
api_key_env = "UP_KEY"
base_url = "{base_url}"

[[models]]
name = "tool-model"
provider = "up"
upstream_model = "upstream-model"
input_price_usd_per_mtok = 1.0
output_price_usd_per_mtok = 2.0
context_window_tokens = 100000
typical_latency_ms = 200
quality = 0.9
capabilities = ["chat", "code", "tools", "json", "vision"]

[[models]]
name = "text-model"
provider = "up"
upstream_model = "text-upstream"
input_price_usd_per_mtok = 0.01
output_price_usd_per_mtok = 0.02
context_window_tokens = 100000
typical_latency_ms = 100
quality = 0.9
capabilities = ["chat", "code"]
"""
