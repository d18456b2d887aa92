"""The built-in ``anthropic`` provider: Anthropic's Messages API through the official SDK.

System turns go to the ``system`` parameter (joined by blank lines), never into
``messages``; consecutive turns of the same role are merged, and empty turns dropped, as the
Messages API requires alternating roles. Temperature is sent only when the provider's
table sets ``send_temperature = true`` (current SDKs and models no longer take it), clamped to
the API's [0, 1].
``base_url`` (operator config only) points at a proxy or gateway. The SDK's own retries
are off (``max_retries=0``): the router's retry loop decides.

Tools go as ``tools`` with ``input_schema``; assistant tool calls as ``tool_use`` blocks;
tool results as ``tool_result`` blocks of a user turn (consecutive results, and a user
turn after them, share one turn); images as ``image`` blocks with a base64 or URL source;
``stop`` as ``stop_sequences``; ``top_p`` as given, in the body (``seed`` has no Anthropic
equivalent and is not sent). A response format is enforced by forcing a tool whose input schema is
the requested one: its input, as JSON text, is the answer's text (streamed as text
deltas). Streamed ``input_json_delta`` pieces of other tools are passed on as tool-call
deltas.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from modelrouter import (
    CallOptions,
    Completion,
    CompletionChunk,
    Message,
    Provider,
    ProviderCall,
    ProviderSettings,
    Role,
    ToolCall,
    ToolCallDelta,
    Usage,
    hookimpl,
    upstream,
)

__all__ = ["AnthropicProvider", "register_providers", "request_tools", "to_messages_api"]

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_ANY_OBJECT = {"type": "object"}
_RESPONSE_TOOL_DESCRIPTION = "Give the final answer: call this tool with the answer as its input."


def _blocks(message: Message) -> list[dict[str, Any]]:
    """Content blocks of one non-system turn (empty text dropped)."""
    blocks: list[dict[str, Any]] = []
    if message.role is Role.TOOL:
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.text:
            result["content"] = message.text
        return [result]
    if not message.parts:
        if message.content:
            blocks.append({"type": "text", "text": message.content})
    else:
        for part in message.parts:
            image = part.image
            if image is not None:
                if image.data is not None:
                    source = {
                        "type": "base64",
                        "media_type": image.media_type,
                        "data": base64.b64encode(image.data).decode("ascii"),
                    }
                else:
                    source = {"type": "url", "url": image.url or ""}
                blocks.append({"type": "image", "source": source})
            elif part.text:
                blocks.append({"type": "text", "text": part.text})
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": json.loads(call.arguments_json or "{}"),
            }
        )
    return blocks


def to_messages_api(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API from our conversation.

    Consecutive turns of one role become one turn (tool results are user turns), as the
    API wants alternating roles; a turn of text only keeps a plain string (its texts
    joined by blank lines). Linear in the conversation's size.
    """
    system = "\n\n".join(m.text for m in messages if m.role is Role.SYSTEM and m.text)
    # (role, blocks) per merged turn; blocks are only appended to, so merging is linear.
    merged: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        blocks = _blocks(message)
        if not blocks:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((role, blocks))
    turns: list[dict[str, Any]] = []
    for role, blocks in merged:
        if all(block["type"] == "text" for block in blocks):
            turns.append({"role": role, "content": "\n\n".join(b["text"] for b in blocks)})
        else:
            turns.append({"role": role, "content": blocks})
    return system or None, turns


def _response_tool_name(options: CallOptions) -> str | None:
    """Name of the tool forced to carry a structured answer, or ``None`` without one."""
    if options.response_format is None:
        return None
    name = options.response_format.name
    taken = {tool.name for tool in options.tools}
    while name in taken:  # never shadow one of the caller's tools
        name += "_"
    return name


def request_tools(options: CallOptions) -> dict[str, Any]:
    """The request fields for ``options``: tools, tool_choice, stop_sequences, top_p.

    With a response format, a tool whose input schema is the requested one is added and
    forced (or, when the caller's tools may be called, one of the tools is required), so
    the answer is that tool's input.
    """
    arguments: dict[str, Any] = {}
    tools = [
        {
            "name": tool.name,
            **({"description": tool.description} if tool.description else {}),
            "input_schema": dict(tool.parameters),
        }
        for tool in options.tools
    ]
    choice = options.tool_choice
    tool_choice: dict[str, Any] | None = None
    if choice == "auto":
        tool_choice = {"type": "auto"}
    elif choice == "required":
        tool_choice = {"type": "any"}
    elif choice == "none":
        tool_choice = {"type": "none"}
    elif choice:
        tool_choice = {"type": "tool", "name": choice}
    response_tool = _response_tool_name(options)
    response_format = options.response_format
    if response_tool is not None and response_format is not None:
        tools.append(
            {
                "name": response_tool,
                "description": _RESPONSE_TOOL_DESCRIPTION,
                "input_schema": dict(response_format.schema or _ANY_OBJECT),
            }
        )
        if not options.tools or choice == "none":
            tool_choice = {"type": "tool", "name": response_tool}
        elif choice in (None, "auto", "required"):
            tool_choice = {"type": "any"}  # a caller's tool, or the answer
    if tools:
        arguments["tools"] = tools
    if tool_choice is not None:
        arguments["tool_choice"] = tool_choice
    if options.stop:
        arguments["stop_sequences"] = list(options.stop)
    if options.top_p is not None:
        # Current SDKs no longer take sampling parameters as arguments; the API still does.
        arguments["extra_body"] = {"top_p": options.top_p}
    return arguments


def _finish_reason(stop_reason: str | None) -> str:
    return _STOP_REASONS.get(stop_reason or "", stop_reason or "stop")


class AnthropicProvider(Provider):
    kind = "anthropic"
    requires_api_key = True
    supports = frozenset({"tools", "vision", "json"})

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        import anthropic  # imported on first use, not when the plugin is discovered

        self._sdk = anthropic
        self._send_temperature = bool(settings.options.get("send_temperature", False))
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.api_key, base_url=settings.base_url, max_retries=0
        )

    def _arguments(self, call: ProviderCall) -> dict[str, Any]:
        system, turns = to_messages_api(call.messages)
        arguments: dict[str, Any] = {
            "model": call.model,
            "messages": turns,
            "max_tokens": call.max_output_tokens,
            **request_tools(call.options),
        }
        if system:
            arguments["system"] = system
        if call.temperature is not None and self._send_temperature:
            extra = arguments.setdefault("extra_body", {})
            extra["temperature"] = min(call.temperature, 1.0)
        if call.timeout_s is not None:
            arguments["timeout"] = call.timeout_s
        return arguments

    def _error(self, exc: BaseException) -> Exception:
        return upstream.translate_sdk_error(exc, self._sdk, [self.settings.api_key])

    async def complete(self, call: ProviderCall) -> Completion:
        upstream.check_supported(call, self.supports, self.settings.name)
        response_tool = _response_tool_name(call.options)
        try:
            response = await self._client.messages.create(**self._arguments(call))
            texts: list[str] = []
            tool_calls: list[ToolCall] = []
            answered = False
            for block in response.content:
                if block.type == "text":
                    if not answered:
                        texts.append(block.text)
                elif block.type == "tool_use" and block.name == response_tool:
                    texts = [json.dumps(block.input)]  # the structured answer replaces prose
                    answered = True
                elif block.type == "tool_use":
                    tool_calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
            finish_reason = _finish_reason(response.stop_reason)
            if answered and not tool_calls:
                finish_reason = "stop"
            return Completion(
                text="".join(texts),
                model=response.model or call.model,
                usage=Usage(response.usage.input_tokens, response.usage.output_tokens),
                finish_reason=finish_reason,
                tool_calls=tuple(tool_calls),
            )
        except Exception as exc:
            raise self._error(exc) from None

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        upstream.check_supported(call, self.supports, self.settings.name)
        response_tool = _response_tool_name(call.options)
        try:
            stream = await self._client.messages.create(**self._arguments(call), stream=True)
        except Exception as exc:
            raise self._error(exc) from None
        input_tokens = output_tokens = 0
        model: str | None = None
        stop_reason: str | None = None
        # Content block index -> our tool-call index (None: the structured answer's tool,
        # whose input is streamed as text).
        tool_blocks: dict[int, int | None] = {}
        calls = 0
        answered = False
        async with stream:  # closing it disconnects from the upstream
            try:
                async for event in stream:
                    if event.type == "message_start":
                        model = event.message.model
                        input_tokens = event.message.usage.input_tokens
                        output_tokens = event.message.usage.output_tokens or 0
                    elif event.type == "content_block_start":
                        block = event.content_block
                        if block.type != "tool_use":
                            continue
                        if block.name == response_tool:
                            tool_blocks[event.index] = None
                            answered = True
                            continue
                        tool_blocks[event.index] = calls
                        yield CompletionChunk(
                            tool_call_delta=ToolCallDelta(calls, id=block.id, name=block.name)
                        )
                        calls += 1
                    elif event.type == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            yield CompletionChunk(delta=delta.text)
                        elif delta.type == "input_json_delta" and delta.partial_json:
                            index = tool_blocks.get(event.index)
                            if index is None:
                                yield CompletionChunk(delta=delta.partial_json)
                            else:
                                yield CompletionChunk(
                                    tool_call_delta=ToolCallDelta(
                                        index, arguments=delta.partial_json
                                    )
                                )
                    elif event.type == "message_delta":
                        output_tokens = event.usage.output_tokens
                        stop_reason = event.delta.stop_reason or stop_reason
            except Exception as exc:
                raise self._error(exc) from None
        finish_reason = _finish_reason(stop_reason)
        if answered and not calls:
            finish_reason = "stop"
        yield CompletionChunk(
            usage=Usage(input_tokens, output_tokens),
            model=model,
            finish_reason=finish_reason,
        )

    async def aclose(self) -> None:
        await self._client.close()


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(AnthropicProvider)
