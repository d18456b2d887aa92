"""The executor: call the chosen model, retrying and failing over along the fallbacks.

One retry loop for every provider (the SDKs' own retries are off):

* Retryable failures (``ProviderError.retryable``: 429, 5xx, timeouts, connection errors,
  unreadable bodies) are retried on the same model up to ``max_attempts_per_model`` calls,
  waiting full-jitter exponential backoff or the upstream's Retry-After; then the next
  fallback is tried. A Retry-After longer than ``backoff_max_s``, or past the deadline,
  moves to the next fallback at once.
* Non-retryable failures (bad request, auth) move to the next fallback without a retry.
* ``context_length`` moves to the next fallback whose context window is larger.
* Models whose circuit is open (see :mod:`.circuit`) are skipped.
* Before every call, listeners may pass the model over (``admit_attempt``): budgets
  hold each attempt's maximum cost this way and skip a model that no longer fits.
* Everything runs inside one :class:`.retry.Deadline`; when it runs out the call ends with
  ``ExecutionDeadlineExceeded``. Cancelling the calling task cancels the upstream call.

Streams fail over only until the first non-empty delta is handed to the caller; after
that a failure ends the stream with ``ExecutionFailed`` (``summary.stream_started``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..base import Completion, CompletionChunk, Provider, ProviderCall, Usage
from ..catalog import Catalog
from ..config import ExecutionConfig, ModelSpec
from ..errors import ExecutionDeadlineExceeded, ExecutionFailed, ProviderError
from ..router import Decision
from ..selection import Candidate
from ..tokens import estimate_text_tokens
from ..types import RoutingRequest
from ..upstream import redact
from .circuit import CircuitBreaker, InMemoryCircuitBreaker
from .listeners import AttemptInfo, ExecutionListener
from .results import CANCELLED, ERROR, OK, AttemptRecord, ExecutionSummary
from .retry import Backoff, Deadline

log = logging.getLogger(__name__)

T = TypeVar("T")


class Executor:
    """Runs routing decisions against the catalog's providers. Safe to share across calls."""

    def __init__(
        self,
        catalog: Catalog,
        config: ExecutionConfig,
        *,
        breaker: CircuitBreaker | None = None,
        listeners: Sequence[ExecutionListener] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config
        self.breaker = breaker or InMemoryCircuitBreaker(
            config.circuit_failure_threshold, config.circuit_cooldown_s, clock
        )
        self.listeners = list(listeners)
        self._clock = clock
        self._sleep = sleep
        self._backoff = Backoff(config.backoff_base_s, config.backoff_max_s, rng or random.Random())

    async def execute(
        self,
        request: RoutingRequest,
        decision: Decision,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
    ) -> ExecutionSummary:
        """Return the whole answer, or raise ``ExecutionFailed`` / ``ExecutionDeadlineExceeded``.

        ``timeout_s`` is the caller's remaining deadline (``None``: none); the server's
        ``request_timeout_s`` caps it.
        """
        run = _Run(self, request, decision, timeout_s, temperature, streaming=False)
        await self._notify_started(run)
        summary: ExecutionSummary | None = None
        error: BaseException | None = None
        try:
            completion, attempt = await self._failover(run, self._complete)
            summary = run.summary(
                text=completion.text, attempt=attempt, finish_reason=completion.finish_reason
            )
            return summary
        except BaseException as exc:
            error = exc
            summary = exc.summary if isinstance(exc, ExecutionFailed) else run.summary()  # type: ignore[assignment]
            raise
        finally:
            await self._notify_finished(run, summary, error)

    async def stream(
        self,
        request: RoutingRequest,
        decision: Decision,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
    ) -> AsyncGenerator[str | ExecutionSummary, None]:
        """Yield text deltas as they arrive, then one final :class:`ExecutionSummary`."""
        run = _Run(self, request, decision, timeout_s, temperature, streaming=True)
        await self._notify_started(run)
        summary: ExecutionSummary | None = None
        error: BaseException | None = None
        try:
            opened, attempt = await self._failover(run, self._open_stream)
            async with contextlib.aclosing(opened.iterator):  # type: ignore[type-var]
                for chunk in opened.buffered:
                    if chunk.delta:
                        run.stream_started = True
                        yield chunk.delta
                    opened.absorb(chunk)
                while not opened.ended:
                    try:
                        async with asyncio.timeout(max(run.deadline.remaining(), 0.0)):
                            chunk = await anext(opened.iterator)
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        await run.cancel(attempt)
                        raise
                    except Exception as exc:
                        usage = run.estimated_usage(opened.text())
                        await run.fail(attempt, exc, usage=usage, estimated=True)
                        raise run.failure(stream_started=True) from None
                    if chunk.delta:
                        yield chunk.delta
                    opened.absorb(chunk)
            estimated = opened.usage is None
            usage = opened.usage or run.estimated_usage(opened.text())
            record = await run.succeed(attempt, usage, estimated=estimated)
            summary = run.summary(
                text="",
                attempt=attempt,
                finish_reason=opened.finish_reason or "stop",
                record=record,
            )
            yield summary
        except BaseException as exc:
            error = exc
            if isinstance(exc, ExecutionFailed):
                summary = exc.summary  # type: ignore[assignment]
            elif summary is None:
                summary = run.summary()
            raise
        finally:
            await self._notify_finished(run, summary, error)

    # -- one attempt ---------------------------------------------------------------------

    async def _complete(self, run: _Run, attempt: _Attempt) -> Completion:
        async with asyncio.timeout(max(run.deadline.remaining(), 0.0)):
            completion = await attempt.provider.complete(attempt.info.call)
        await run.succeed(attempt, completion.usage)
        return completion

    async def _open_stream(self, run: _Run, attempt: _Attempt) -> _OpenStream:
        iterator = aiter(attempt.provider.stream(attempt.info.call))
        opened = _OpenStream(iterator)
        try:
            while True:
                async with asyncio.timeout(max(run.deadline.remaining(), 0.0)):
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        opened.ended = True
                        return opened
                opened.buffered.append(chunk)
                if chunk.delta:
                    return opened
        except BaseException:
            await _aclose(iterator)
            raise

    # -- the loop --------------------------------------------------------------------------

    async def _failover(
        self, run: _Run, call_once: Callable[[_Run, _Attempt], Awaitable[T]]
    ) -> tuple[T, _Attempt]:
        larger_than = 0  # after a context-length failure, only larger windows are tried
        for candidate in run.decision.selection.candidates:
            spec = candidate.model
            if spec.context_window_tokens <= larger_than:
                run.skipped.append((spec.name, "context window not larger than the last tried"))
                continue
            reason = self.catalog.unavailable_reason(spec)
            if reason is not None:
                run.skipped.append((spec.name, reason))
                continue
            provider = self.catalog.providers[spec.provider]
            for retry in range(self.config.max_attempts_per_model):
                if run.deadline.expired:
                    raise run.failure()
                refusal = await self._admit(run, candidate)
                if refusal is not None:
                    run.skipped.append((spec.name, refusal))
                    break
                attempt = run.begin(spec, provider, retry)
                try:
                    return await call_once(run, attempt), attempt
                except asyncio.CancelledError:
                    await run.cancel(attempt)
                    raise
                except Exception as exc:
                    error = await run.fail(attempt, exc)
                if run.deadline.expired:
                    raise run.failure()
                if error.kind == "context_length":
                    larger_than = spec.context_window_tokens
                    break
                if not error.retryable or retry + 1 >= self.config.max_attempts_per_model:
                    break
                if self.breaker.open_reason(spec.name) is not None:
                    break  # this failure opened the circuit: stop hammering the model
                delay = self._backoff.delay(retry, error.retry_after_s)
                if delay is None or delay >= run.deadline.remaining():
                    break
                await self._sleep(delay)
        raise run.failure()

    async def _admit(self, run: _Run, candidate: Candidate) -> str | None:
        """The first listener's reason to pass ``candidate`` over (a budget), or ``None``."""
        attempts = tuple(run.records)
        for listener in self.listeners:
            refusal = await listener.admit_attempt(run.request, run.decision, candidate, attempts)
            if refusal is not None:
                return refusal
        return None

    async def _notify_started(self, run: _Run) -> None:
        for listener in self.listeners:
            await listener.execution_started(run.request, run.decision)

    async def _notify_finished(
        self, run: _Run, summary: ExecutionSummary | None, error: BaseException | None
    ) -> None:
        for listener in self.listeners:
            try:
                await listener.execution_finished(run.request, run.decision, summary, error)
            except Exception:  # a listener must not turn an answer into a failure
                log.exception("execution listener %r failed", listener)


@dataclass(slots=True)
class _Attempt:
    spec: ModelSpec
    provider: Provider
    info: AttemptInfo
    started: float


@dataclass(slots=True)
class _OpenStream:
    iterator: AsyncIterator[CompletionChunk]
    buffered: list[CompletionChunk] = field(default_factory=list)
    ended: bool = False
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None

    def absorb(self, chunk: CompletionChunk) -> None:
        if chunk.delta:
            self.parts.append(chunk.delta)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason

    def text(self) -> str:
        return "".join(self.parts)


class _Run:
    """Bookkeeping of one execution: deadline, attempts, usage and cost."""

    def __init__(
        self,
        executor: Executor,
        request: RoutingRequest,
        decision: Decision,
        timeout_s: float | None,
        temperature: float | None,
        *,
        streaming: bool,
    ) -> None:
        self.executor = executor
        self.request = request
        self.decision = decision
        self.temperature = temperature
        self.streaming = streaming
        self.deadline = Deadline(timeout_s, executor.config.request_timeout_s, executor._clock)
        self.records: list[AttemptRecord] = []
        self.skipped: list[tuple[str, str]] = []
        self.errors: list[ProviderError] = []
        self.stream_started = False

    def begin(self, spec: ModelSpec, provider: Provider, retry: int) -> _Attempt:
        call = ProviderCall(
            model=spec.upstream_model,
            messages=self.request.messages,
            max_output_tokens=self.decision.selection.max_output_tokens,
            timeout_s=max(self.deadline.remaining(), 0.0),
            temperature=self.temperature,
        )
        info = AttemptInfo(
            model=spec,
            provider=spec.provider,
            provider_kind=provider.kind,
            call=call,
            retry=retry,
            streaming=self.streaming,
        )
        for listener in self.executor.listeners:
            listener.attempt_started(info)
        return _Attempt(spec, provider, info, self.executor._clock())

    def _finish(self, attempt: _Attempt, record: AttemptRecord) -> AttemptRecord:
        self.records.append(record)
        for listener in self.executor.listeners:
            try:
                listener.attempt_finished(attempt.info, record)
            except Exception:
                log.exception("execution listener %r failed", listener)
        return record

    def _latency_ms(self, attempt: _Attempt) -> float:
        return (self.executor._clock() - attempt.started) * 1000.0

    async def succeed(
        self, attempt: _Attempt, usage: Usage, *, estimated: bool = False
    ) -> AttemptRecord:
        await self.executor.breaker.record_success(attempt.spec.name)
        return self._finish(
            attempt,
            AttemptRecord(
                model=attempt.spec.name,
                provider=attempt.spec.provider,
                outcome=OK,
                latency_ms=self._latency_ms(attempt),
                usage=usage,
                cost_usd=attempt.spec.cost_usd(usage.input_tokens, usage.output_tokens),
                usage_estimated=estimated,
            ),
        )

    async def fail(
        self,
        attempt: _Attempt,
        exc: BaseException,
        *,
        usage: Usage | None = None,
        estimated: bool = False,
    ) -> ProviderError:
        error = self._as_provider_error(attempt, exc)
        self.errors.append(error)
        # A call cut short by the caller's own deadline says nothing about the model.
        if not (error.kind == "timeout" and self.deadline.expired):
            await self.executor.breaker.record_failure(attempt.spec.name, error.kind)
        cost = attempt.spec.cost_usd(usage.input_tokens, usage.output_tokens) if usage else 0.0
        self._finish(
            attempt,
            AttemptRecord(
                model=attempt.spec.name,
                provider=attempt.spec.provider,
                outcome=ERROR,
                latency_ms=self._latency_ms(attempt),
                error_type=error.kind,
                error_message=str(error),
                usage=usage,
                cost_usd=cost,
                usage_estimated=estimated,
            ),
        )
        log.warning(
            "attempt on %s (%s) failed: %s: %s",
            attempt.spec.name,
            attempt.spec.provider,
            error.kind,
            error,
        )
        return error

    async def cancel(self, attempt: _Attempt) -> None:
        self._finish(
            attempt,
            AttemptRecord(
                model=attempt.spec.name,
                provider=attempt.spec.provider,
                outcome=CANCELLED,
                latency_ms=self._latency_ms(attempt),
                error_type="cancelled",
            ),
        )

    def _as_provider_error(self, attempt: _Attempt, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, TimeoutError):
            return ProviderError("timeout", "no answer before the deadline", retryable=True)
        # A plugin let an unexpected exception escape: a provider fault, not retried. The
        # traceback is logged with the provider's key removed, should it appear anywhere.
        trace = "".join(traceback.format_exception(exc))
        log.error(
            "provider %s raised %s instead of ProviderError:\n%s",
            attempt.spec.provider,
            type(exc).__name__,
            redact(trace, [attempt.provider.settings.api_key]),
        )
        return ProviderError("provider_error", type(exc).__name__, retryable=False)

    def estimated_usage(self, text: str) -> Usage:
        return Usage(
            input_tokens=self.decision.selection.input_tokens,
            output_tokens=estimate_text_tokens(text) if text else 0,
        )

    def summary(
        self,
        *,
        text: str = "",
        attempt: _Attempt | None = None,
        finish_reason: str = "",
        record: AttemptRecord | None = None,
    ) -> ExecutionSummary:
        records = tuple(self.records)
        answered = record or (records[-1] if attempt is not None and records else None)
        if answered is not None and answered.usage is not None:
            usage = answered.usage
        else:
            usage = Usage(
                input_tokens=sum(r.usage.input_tokens for r in records if r.usage),
                output_tokens=sum(r.usage.output_tokens for r in records if r.usage),
            )
        return ExecutionSummary(
            decision=self.decision,
            attempts=records,
            usage=usage,
            cost_usd=sum(r.cost_usd for r in records),
            latency_ms=self.deadline.elapsed_ms(),
            text=text,
            model=answered.model if answered else "",
            provider=answered.provider if answered else "",
            finish_reason=finish_reason,
            stream_started=self.stream_started,
            usage_estimated=any(r.usage_estimated for r in records),
            skipped=tuple(self.skipped),
        )

    def failure(self, *, stream_started: bool = False) -> ExecutionFailed:
        self.stream_started = self.stream_started or stream_started
        summary = self.summary()
        retry_after = max(
            (e.retry_after_s for e in self.errors if e.retry_after_s is not None), default=None
        )
        if self.deadline.expired:
            return ExecutionDeadlineExceeded(
                f"deadline exceeded after {len(self.records)} attempt(s)"
                f"{_describe(self.records, self.skipped)}",
                summary,
                retry_after,
            )
        if stream_started:
            last = self.records[-1]
            message = (
                f"the stream from {last.model} broke after the answer had begun: "
                f"{last.error_type}: {last.error_message}"
            )
        elif not self.records:
            message = f"no model could be called{_describe(self.records, self.skipped)}"
        else:
            described = _describe(self.records, self.skipped)
            message = f"all {len(self.records)} attempt(s) failed{described}"
        return ExecutionFailed(message, summary, retry_after)


def _describe(records: Sequence[AttemptRecord], skipped: Sequence[tuple[str, str]]) -> str:
    parts = [f"{r.model}: {r.error_type}" for r in records if r.outcome != OK]
    parts += [f"{name} skipped: {reason}" for name, reason in skipped]
    return f" ({'; '.join(parts)})" if parts else ""


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
