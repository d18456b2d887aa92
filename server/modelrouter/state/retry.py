"""Runtime degradation of a backend: retry with backoff, log, count, then give up loudly.

A write that gives up raises ``StorageUnavailable``; the caller turns it into UNAVAILABLE
and acknowledges nothing, so acknowledged data is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .interfaces import StorageUnavailable
from .redact import redact_url

log = logging.getLogger("modelrouter.state")
T = TypeVar("T")


@dataclass
class RetryPolicy:
    attempts: int = 4
    first_delay_s: float = 0.05
    max_delay_s: float = 1.0
    #: Failures seen since start (every failed attempt), for health and metrics.
    failures: int = 0

    async def run(
        self,
        backend: str,
        operation: str,
        call: Callable[[], Awaitable[T]],
        retry_on: tuple[type[BaseException], ...],
        reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        delay = self.first_delay_s
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except retry_on as raised:
                self.failures += 1
                # A driver's message may quote the connection URL, password and all.
                error = redact_url(str(raised))
                if attempt == self.attempts:
                    log.error(
                        "%s %s failed %d times; giving up: %s", backend, operation, attempt, error
                    )
                    raise StorageUnavailable(
                        f"{backend} unavailable during {operation}: {error}"
                    ) from None  # the raw driver error may quote the URL
                log.warning(
                    "%s %s failed (attempt %d/%d), retrying in %.2fs: %s",
                    backend,
                    operation,
                    attempt,
                    self.attempts,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
                if reconnect is not None:
                    # A failed reconnect is the next attempt's failure, counted there.
                    with contextlib.suppress(*retry_on):
                        await reconnect()
        raise AssertionError("unreachable")
