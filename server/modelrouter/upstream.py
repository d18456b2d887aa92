"""Helpers for provider plugins (``from modelrouter import upstream``): upstream failures as
``ProviderError``.

Every provider maps its SDK's exceptions through :func:`error_for_status` (HTTP status
answers), :func:`timeout_error`, :func:`connection_error` and :func:`malformed_error`, so
that retry decisions and error classes are the same whichever SDK is underneath. Every
message passes through :func:`redact` so that an API key never reaches logs, spans or
callers, even when an upstream echoes it back.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING

from .errors import ProviderError

if TYPE_CHECKING:
    from .base import ProviderCall

_CONTEXT_LENGTH_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "exceeds the context",
)
_MAX_MESSAGE = 300


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``[redacted]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(float(lowered["retry-after-ms"]) / 1000.0, 0.0)
        value = lowered.get("retry-after")
        if value is None:
            return None
        return max(float(value), 0.0)
    except ValueError:
        pass
    date = email.utils.parsedate_to_datetime(value) if value else None
    return None if date is None else max(date.timestamp() - time.time(), 0.0)


def is_context_length(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _CONTEXT_LENGTH_MARKERS)


def error_for_status(
    status_code: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """The ``ProviderError`` for an upstream HTTP error answer.

    429 is ``rate_limit``, 408 ``timeout``, 409 and 5xx (including 529, overloaded)
    ``server_error``: all retryable, with the upstream's Retry-After. 401/403 are ``auth``;
    other 4xx are ``bad_request``, or ``context_length`` when the message says the prompt
    does not fit. Those are not retried on the same model.
    """
    text = f"HTTP {status_code}: {redact(message, secrets)[:_MAX_MESSAGE]}"
    retry_after = parse_retry_after(headers)
    if status_code == 429:
        return ProviderError(
            "rate_limit", text, retryable=True, retry_after_s=retry_after, status_code=status_code
        )
    if status_code == 408:
        return ProviderError(
            "timeout", text, retryable=True, retry_after_s=retry_after, status_code=status_code
        )
    if status_code == 409 or status_code >= 500:
        return ProviderError(
            "server_error", text, retryable=True, retry_after_s=retry_after, status_code=status_code
        )
    if status_code in (401, 403):
        return ProviderError("auth", text, retryable=False, status_code=status_code)
    kind = "context_length" if is_context_length(message) else "bad_request"
    return ProviderError(kind, text, retryable=False, status_code=status_code)


def timeout_error(detail: str = "the upstream did not answer in time") -> ProviderError:
    return ProviderError("timeout", detail, retryable=True)


def connection_error(detail: str, secrets: Iterable[str | None] = ()) -> ProviderError:
    return ProviderError("connection", redact(detail, secrets)[:_MAX_MESSAGE], retryable=True)


def malformed_error(detail: str, secrets: Iterable[str | None] = ()) -> ProviderError:
    """The upstream answered 2xx with a body we cannot read. Retryable: often transient."""
    return ProviderError(
        "malformed_response", redact(detail, secrets)[:_MAX_MESSAGE], retryable=True
    )


_TRANSPORT_MODULES = ("httpx", "httpcore", "httpx2", "h11", "h2", "anyio", "ssl")


def translate_sdk_error(
    exc: BaseException, sdk: ModuleType, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """Map an exception from an official (Stainless-generated) SDK such as ``openai`` or
    ``anthropic`` to ``ProviderError``. Both SDKs share the exception hierarchy used here.

    Transport errors raised while reading a stream (the SDKs do not wrap those) count as
    ``connection``; an unreadable body as ``malformed_response``.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, sdk.APITimeoutError):
        return timeout_error()
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        return connection_error(f"{type(cause).__name__}: {cause}", secrets)
    if isinstance(exc, sdk.APIStatusError):
        return error_for_status(
            exc.status_code,
            _body_message(getattr(exc, "body", None), exc.message),
            headers=dict(exc.response.headers),
            secrets=secrets,
        )
    if isinstance(exc, sdk.APIResponseValidationError):
        return malformed_error(f"unexpected response body: {exc.message}", secrets)
    if isinstance(exc, sdk.APIError):
        # An error event inside a 200 stream: the upstream gave up mid-answer.
        return ProviderError(
            "server_error",
            redact(_body_message(getattr(exc, "body", None), exc.message), secrets)[:_MAX_MESSAGE],
            retryable=True,
        )
    if isinstance(exc, TimeoutError):
        return timeout_error()
    if type(exc).__module__.split(".")[0] in _TRANSPORT_MODULES or isinstance(exc, OSError):
        return connection_error(f"{type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError | IndexError):
        return malformed_error(f"{type(exc).__name__}: {exc}", secrets)
    raise exc


def _body_message(body: object, fallback: str) -> str:
    """``code: message`` from an error body (``{"error": {...}}`` or already unwrapped)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message")
            code = inner.get("code") or inner.get("type")
            if message:
                return f"{code}: {message}" if code else str(message)
    return fallback


def check_supported(call: ProviderCall, supports: frozenset[str], provider: str) -> None:
    """Raise ``ProviderError(kind="unsupported", retryable=False)`` when ``call`` needs
    something (``tools``, ``vision``, ``json``) that ``supports`` lacks. Providers call it
    first, so that a request is refused rather than sent with its tools, images or schema
    silently dropped."""
    missing = call.needed_capabilities() - supports
    if missing:
        raise ProviderError(
            "unsupported",
            f"provider {provider!r} cannot carry {', '.join(sorted(missing))} "
            f"(it supports: {', '.join(sorted(supports)) or 'text only'})",
            retryable=False,
        )
