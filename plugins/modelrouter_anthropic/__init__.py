"""The built-in ``anthropic`` provider: Anthropic's Messages API through the official SDK.

System turns go to the ``system`` parameter (joined by blank lines), never into
``messages``; consecutive turns of the same role are merged, and empty turns dropped, as the
Messages API requires alternating roles. Temperature is sent only when the provider's
table sets ``send_temperature = true`` (current SDKs and models no longer take it), clamped to
the API's [0, 1].
``base_url`` (operator config only) points at a proxy or gateway. The SDK's own retries
are off (``max_retries=0``): the router's retry loop decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from modelrouter import (
    Completion,
    CompletionChunk,
    Message,
    Provider,
    ProviderCall,
    ProviderSettings,
    Role,
    Usage,
    hookimpl,
    upstream,
)

__all__ = ["AnthropicProvider", "register_providers", "to_messages_api"]

_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def to_messages_api(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, str]]]:
    """``(system, messages)`` for the Messages API from our conversation."""
    system = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM and m.content)
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role is Role.SYSTEM or not message.content:
            continue
        role = message.role.value
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": role, "content": message.content})
    return system or None, turns


def _finish_reason(stop_reason: str | None) -> str:
    return _STOP_REASONS.get(stop_reason or "", stop_reason or "stop")


class AnthropicProvider(Provider):
    kind = "anthropic"
    requires_api_key = True

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
        }
        if system:
            arguments["system"] = system
        if call.temperature is not None and self._send_temperature:
            arguments["extra_body"] = {"temperature": min(call.temperature, 1.0)}
        if call.timeout_s is not None:
            arguments["timeout"] = call.timeout_s
        return arguments

    def _error(self, exc: BaseException) -> Exception:
        return upstream.translate_sdk_error(exc, self._sdk, [self.settings.api_key])

    async def complete(self, call: ProviderCall) -> Completion:
        try:
            response = await self._client.messages.create(**self._arguments(call))
            text = "".join(block.text for block in response.content if block.type == "text")
            return Completion(
                text=text,
                model=response.model or call.model,
                usage=Usage(response.usage.input_tokens, response.usage.output_tokens),
                finish_reason=_finish_reason(response.stop_reason),
            )
        except Exception as exc:
            raise self._error(exc) from None

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        try:
            stream = await self._client.messages.create(**self._arguments(call), stream=True)
        except Exception as exc:
            raise self._error(exc) from None
        input_tokens = output_tokens = 0
        model: str | None = None
        stop_reason: str | None = None
        async with stream:  # closing it disconnects from the upstream
            try:
                async for event in stream:
                    if event.type == "message_start":
                        model = event.message.model
                        input_tokens = event.message.usage.input_tokens
                        output_tokens = event.message.usage.output_tokens or 0
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        if event.delta.text:
                            yield CompletionChunk(delta=event.delta.text)
                    elif event.type == "message_delta":
                        output_tokens = event.usage.output_tokens
                        stop_reason = event.delta.stop_reason or stop_reason
            except Exception as exc:
                raise self._error(exc) from None
        yield CompletionChunk(
            usage=Usage(input_tokens, output_tokens),
            model=model,
            finish_reason=_finish_reason(stop_reason),
        )

    async def aclose(self) -> None:
        await self._client.close()


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(AnthropicProvider)
