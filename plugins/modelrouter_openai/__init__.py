"""The built-in ``openai`` provider: OpenAI's Chat Completions API through the official SDK.

Also any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, Azure OpenAI's v1
endpoint) through ``base_url`` in the provider's config table; the base URL comes only from
the operator's config, never from a request. A provider with a ``base_url`` and no
``api_key_env`` needs no key. Options (keys of ``[providers.NAME]``):

* ``max_tokens_field``: ``"max_tokens"`` or ``"max_completion_tokens"``. Default:
  ``max_completion_tokens`` for api.openai.com, ``max_tokens`` for other servers.
* ``default_headers``: a table of extra HTTP headers.

The SDK's own retries are off (``max_retries=0``): the router's retry loop decides.
Streaming asks for ``stream_options.include_usage`` so that the final chunk carries usage.
The body is built here in the wire format and sent with the SDK client's ``post`` (its
documented way to call an endpoint with a body as given): ``chat.completions.create``
would walk the whole conversation again to transform its typed parameters, which cost
about a millisecond per call, as much as the rest of the router's work on a request.
Authentication, headers, timeouts, errors and response parsing are the SDK's either way.

Tools go as ``tools`` of type ``function``, assistant tool calls as ``tool_calls`` and tool
results as ``tool`` messages; images as ``image_url`` parts (the URL, or a base64 ``data:``
URL for inline bytes); a response format as ``response_format`` (``json_schema`` with the
request's ``strict``, or ``json_object``); ``stop``, ``top_p`` and ``seed`` as given.
Streamed tool-call deltas are passed on as they come, one chunk per call piece.
"""

from __future__ import annotations

import base64
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

__all__ = ["OpenAIProvider", "register_providers", "to_chat_messages", "tool_arguments"]

_NO_KEY = "no-key-needed"  # the SDK refuses a missing key; compatible servers ignore it


def _content(message: Message) -> str | list[dict[str, Any]]:
    if not message.parts:
        return message.content
    if message.role is not Role.USER:  # only user turns take image parts; others are text
        return message.text
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if part.image is not None:
            image = part.image
            if image.data is not None:
                encoded = base64.b64encode(image.data).decode("ascii")
                url = f"data:{image.media_type};base64,{encoded}"
            else:
                url = image.url or ""
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif part.text is not None:
            content.append({"type": "text", "text": part.text})
    return content


def to_chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Chat Completions ``messages`` for our conversation."""
    result: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role.value, "content": _content(message)}
        if message.role is Role.TOOL:
            entry["tool_call_id"] = message.tool_call_id
        elif message.tool_calls:
            entry["content"] = entry["content"] or None
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call in message.tool_calls
            ]
        result.append(entry)
    return result


def tool_arguments(options: CallOptions) -> dict[str, Any]:
    """The request fields for ``options``: tools, tool_choice, response_format, stop,
    top_p, seed (only those set)."""
    arguments: dict[str, Any] = {}
    if options.tools:
        arguments["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "parameters": dict(tool.parameters),
                },
            }
            for tool in options.tools
        ]
    choice = options.tool_choice
    if choice in ("auto", "none", "required"):
        arguments["tool_choice"] = choice
    elif choice:
        arguments["tool_choice"] = {"type": "function", "function": {"name": choice}}
    response_format = options.response_format
    if response_format is not None:
        if response_format.kind == "json_schema":
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": response_format.name,
                    "schema": dict(response_format.schema or {}),
                    "strict": response_format.strict,
                },
            }
        else:
            arguments["response_format"] = {"type": "json_object"}
    if options.stop:
        arguments["stop"] = list(options.stop)
    if options.top_p is not None:
        arguments["top_p"] = options.top_p
    if options.seed is not None:
        arguments["seed"] = options.seed
    return arguments


class OpenAIProvider(Provider):
    kind = "openai"
    requires_api_key = True
    supports = frozenset({"tools", "vision", "json"})

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        import openai  # imported on first use, not when the plugin is discovered

        self._sdk = openai
        options = dict(settings.options)
        default_field = "max_tokens" if settings.base_url else "max_completion_tokens"
        self._max_tokens_field = str(options.get("max_tokens_field", default_field))
        if self._max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError(
                f"providers.{settings.name}.max_tokens_field: expected max_tokens or "
                f"max_completion_tokens, got {self._max_tokens_field!r}"
            )
        headers = options.get("default_headers") or None
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key or _NO_KEY,
            base_url=settings.base_url,
            max_retries=0,
            default_headers=headers,  # type: ignore[arg-type]
        )
        self._stream_cls = openai.AsyncStream[openai.types.chat.ChatCompletionChunk]

    def _body(self, call: ProviderCall) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": call.model,
            "messages": to_chat_messages(call.messages),
            self._max_tokens_field: call.max_output_tokens,
            **tool_arguments(call.options),
        }
        if call.temperature is not None:
            body["temperature"] = call.temperature
        return body

    async def _post(self, call: ProviderCall, body: dict[str, Any], *, stream: bool) -> Any:
        options: dict[str, Any] = {} if call.timeout_s is None else {"timeout": call.timeout_s}
        return await self._client.post(  # type: ignore[call-overload]
            "/chat/completions",
            body=body,
            options=options,
            cast_to=self._sdk.types.chat.ChatCompletion,
            stream=stream,
            stream_cls=self._stream_cls,
        )

    def _error(self, exc: BaseException) -> Exception:
        return upstream.translate_sdk_error(exc, self._sdk, [self.settings.api_key])

    async def complete(self, call: ProviderCall) -> Completion:
        upstream.check_supported(call, self.supports, self.settings.name)
        try:
            response = await self._post(call, self._body(call), stream=False)
            choice = response.choices[0]
            usage = response.usage
            tool_calls = tuple(
                ToolCall(c.id, c.function.name, c.function.arguments or "{}")
                for c in choice.message.tool_calls or ()
                if c.type == "function"
            )
            return Completion(
                text=choice.message.content or "",
                model=response.model or call.model,
                usage=Usage(
                    input_tokens=usage.prompt_tokens if usage else 0,
                    output_tokens=usage.completion_tokens if usage else 0,
                ),
                finish_reason=choice.finish_reason or "stop",
                tool_calls=tool_calls,
            )
        except Exception as exc:
            raise self._error(exc) from None

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        upstream.check_supported(call, self.supports, self.settings.name)
        try:
            body = self._body(call)
            body.update(stream=True, stream_options={"include_usage": True})
            stream = await self._post(call, body, stream=True)
        except Exception as exc:
            raise self._error(exc) from None
        usage: Usage | None = None
        model: str | None = None
        finish_reason: str | None = None
        # Closing the stream (also on cancellation) closes the HTTP response, so the
        # upstream sees the disconnect and stops generating.
        async with stream:
            try:
                async for chunk in stream:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        finish_reason = choice.finish_reason or finish_reason
                        if not choice.delta:
                            continue
                        if choice.delta.content:
                            yield CompletionChunk(delta=choice.delta.content)
                        for piece in choice.delta.tool_calls or ():
                            function = piece.function
                            yield CompletionChunk(
                                tool_call_delta=ToolCallDelta(
                                    index=piece.index,
                                    id=piece.id or None,
                                    name=(function.name or None) if function else None,
                                    arguments=(function.arguments or "") if function else "",
                                )
                            )
            except Exception as exc:
                raise self._error(exc) from None
        yield CompletionChunk(usage=usage, model=model, finish_reason=finish_reason or "stop")

    async def aclose(self) -> None:
        await self._client.close()


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(OpenAIProvider)
