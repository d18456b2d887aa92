"""A circuit breaker shared by every replica through Redis.

Failure counts, the last error and the open-until time of every model live in one Redis
hash (``{prefix}:circuit``), changed only by single Lua scripts or single commands, so
concurrent replicas never lose a failure. Open-until is in Redis's own clock (``TIME``),
and each replica converts what is left of it to its local monotonic clock, so clock skew
between hosts does not matter.

``open_reason`` must never block, so it reads a local view: refreshed from Redis every
``refresh_s`` seconds in the background, and at once from the script's answer when this
replica records a failure. Another replica's failures are therefore seen within
``refresh_s``. The breaker is advisory: when Redis is slow or unreachable, writes fall back
to the local view (this replica keeps protecting itself) and the request goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..execution.circuit import HEALTH_FAILURES, CircuitBreaker
from .redact import redact_url

log = logging.getLogger(__name__)

#: Seconds a breaker write may take before the request goes on without it.
WRITE_TIMEOUT_S = 1.0

# KEYS[1]: the circuit hash. ARGV: model, error type, failure threshold, cooldown (ms).
# Returns {consecutive failures, milliseconds the circuit stays open (<= 0: closed)}.
_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local model = ARGV[1]
local failures = redis.call('HINCRBY', KEYS[1], model .. '|n', 1)
redis.call('HSET', KEYS[1], model .. '|err', ARGV[2])
if failures >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], model .. '|until', now + tonumber(ARGV[4]))
end
local open_until = tonumber(redis.call('HGET', KEYS[1], model .. '|until') or '0')
return {failures, open_until - now}
"""

# KEYS[1]: the circuit hash. Returns {Redis time in ms, the hash as a flat field/value list}.
_SNAPSHOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, redis.call('HGETALL', KEYS[1])}
"""


@dataclass(slots=True)
class _View:
    failures: int = 0
    #: When the circuit closes, on this process's monotonic clock.
    open_until: float = 0.0
    last_error: str = ""


class RedisCircuitBreaker(CircuitBreaker):
    """Opens a model's circuit after ``failure_threshold`` consecutive health failures
    seen by any replica; it stays open ``cooldown_s`` seconds, then lets calls through
    (half-open) until one fails (opens again at once) or succeeds (closes).

    Call :meth:`start` before use and :meth:`aclose` after; the client is not closed.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        failure_threshold: int,
        cooldown_s: float,
        *,
        refresh_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.key = f"{prefix}:circuit"
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.refresh_s = refresh_s
        self._clock = clock
        self._views: dict[str, _View] = {}
        #: Bumped by every local write, so a refresh read before it does not undo it.
        self._writes = 0
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._failure = client.register_script(_FAILURE)
        self._snapshot = client.register_script(_SNAPSHOT)

    async def start(self) -> None:
        """Read the shared state once, then keep refreshing it in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="circuit-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def open_reason(self, model: str) -> str | None:
        view = self._views.get(model)
        if view is None:
            return None
        left = view.open_until - self._clock()
        if left <= 0:
            return None
        return (
            f"circuit open after {view.failures} consecutive failures "
            f"(last: {view.last_error}); retrying in {left:.1f} s"
        )

    async def record_success(self, model: str) -> None:
        key = self.key
        fields = (f"{model}|n", f"{model}|err", f"{model}|until")
        await self._write("success", lambda: self.client.hdel(key, *fields))
        self._views.pop(model, None)

    async def record_failure(self, model: str, error_type: str) -> None:
        if error_type not in HEALTH_FAILURES:
            return
        cooldown_ms = int(self.cooldown_s * 1000)
        args: list[str | int] = [model, error_type, self.failure_threshold, cooldown_ms]
        answer = await self._write("failure", lambda: self._failure(keys=[self.key], args=args))
        view = self._views.setdefault(model, _View())
        view.last_error = error_type
        if answer is None:  # Redis did not answer: count it here, like a lone replica
            view.failures += 1
            if view.failures >= self.failure_threshold:
                view.open_until = self._clock() + self.cooldown_s
            return
        failures, open_ms = (int(x) for x in answer)
        # Answers to concurrent calls may arrive out of order: keep the latest state.
        view.failures = max(view.failures, failures)
        view.open_until = max(view.open_until, self._clock() + open_ms / 1000.0)

    async def refresh(self) -> None:
        """Replace the local view by the shared state (kept as it is if Redis fails)."""
        writes = self._writes
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                now_ms, flat = await self._snapshot(keys=[self.key])
        except Exception as error:  # any Redis failure: keep the last view
            self._report(error)
            return
        self._report(None)
        if writes != self._writes:
            return  # a local write raced this read; the next refresh includes it
        local_now = self._clock()
        views: dict[str, _View] = {}
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            model, _, kind = field.decode().rpartition("|")
            view = views.setdefault(model, _View())
            if kind == "n":
                view.failures = int(value)
            elif kind == "err":
                view.last_error = value.decode()
            elif kind == "until":
                view.open_until = local_now + (int(value) - int(now_ms)) / 1000.0
        self._views = views

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh()

    async def _write(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()``'s answer, or ``None`` when Redis failed or was too slow."""
        # Bumped before and after, so no refresh overlapping the write replaces the view
        # with a snapshot that may predate it.
        self._writes += 1
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                return await call()
        except Exception as error:  # the breaker must never fail a request
            log.warning(
                "circuit breaker: recording a %s in Redis failed: %s", what, redact_url(str(error))
            )
            return None
        finally:
            self._writes += 1

    def _report(self, error: Exception | None) -> None:
        # One line when the shared state becomes unreadable and one when it is back.
        if error is not None and not self._failing:
            log.warning(
                "circuit breaker: cannot read the shared state from Redis: %s",
                redact_url(str(error)),
            )
        elif error is None and self._failing:
            log.info("circuit breaker: shared state readable again")
        self._failing = error is not None
