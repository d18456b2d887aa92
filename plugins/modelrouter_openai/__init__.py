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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from modelrouter import (
    Completion,
    CompletionChunk,
    Provider,
    ProviderCall,
    ProviderSettings,
    Usage,
    hookimpl,
    upstream,
)

__all__ = ["OpenAIProvider", "register_providers"]

_NO_KEY = "no-key-needed"  # the SDK refuses a missing key; compatible servers ignore it


class OpenAIProvider(Provider):
    kind = "openai"
    requires_api_key = True

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

    def _arguments(self, call: ProviderCall) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": call.model,
            "messages": [{"role": m.role.value, "content": m.content} for m in call.messages],
            self._max_tokens_field: call.max_output_tokens,
        }
        if call.temperature is not None:
            arguments["temperature"] = call.temperature
        if call.timeout_s is not None:
            arguments["timeout"] = call.timeout_s
        return arguments

    def _error(self, exc: BaseException) -> Exception:
        return upstream.translate_sdk_error(exc, self._sdk, [self.settings.api_key])

    async def complete(self, call: ProviderCall) -> Completion:
        try:
            response = await self._client.chat.completions.create(**self._arguments(call))
            choice = response.choices[0]
            usage = response.usage
            return Completion(
                text=choice.message.content or "",
                model=response.model or call.model,
                usage=Usage(
                    input_tokens=usage.prompt_tokens if usage else 0,
                    output_tokens=usage.completion_tokens if usage else 0,
                ),
                finish_reason=choice.finish_reason or "stop",
            )
        except Exception as exc:
            raise self._error(exc) from None

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        try:
            stream = await self._client.chat.completions.create(
                **self._arguments(call), stream=True, stream_options={"include_usage": True}
            )
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
                        if choice.delta and choice.delta.content:
                            yield CompletionChunk(delta=choice.delta.content)
            except Exception as exc:
                raise self._error(exc) from None
        yield CompletionChunk(usage=usage, model=model, finish_reason=finish_reason or "stop")

    async def aclose(self) -> None:
        await self._client.close()


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(OpenAIProvider)
