"""Stage 4, execute: call the chosen model, retrying and failing over along the fallbacks.

One attempt loop for unary and streaming calls and for every provider (the SDKs' own
retries are off):

* Retryable failures (``ProviderError.retryable``: 429, 5xx, timeouts, connection errors,
  unreadable bodies) are retried on the same model up to ``max_attempts_per_model`` calls,
  waiting full-jitter exponential backoff or the upstream's Retry-After; then the next
  fallback is tried. A Retry-After longer than ``backoff_max_s``, or past the deadline,
  moves to the next fallback at once.
* Non-retryable failures (bad request, auth) move to the next fallback without a retry.
* ``context_length`` moves to the next fallback whose context window is larger.
* A call needing what the provider cannot carry (tools, images, a response format) is
  refused before it is sent (never sent with them dropped), and the next model tried.
* Models whose circuit is open are skipped; so are models the budget cannot hold
  (:class:`.budget.AttemptBudget` reserves each attempt's maximum cost first).
* Everything runs inside one :class:`~modelrouter.execution.retry.Deadline`; when it runs
  out the call ends with ``ExecutionDeadlineExceeded``. Cancelling the calling task
  cancels the upstream call.

Streams fail over only until the first delta is handed to the caller; after that a
failure ends the stream with ``ExecutionFailed`` (``summary.stream_started``).

The loop produces data only: one :class:`AttemptRecord` per call and, from
:meth:`Run.summary`, the :class:`ExecutionSummary`, available whatever happened. What
they mean for spend, logs and telemetry is the record stage's business.

Charging what was consumed: an attempt is charged the usage its provider reported; when
it reported none because the call was cut short (timeout, cancellation, a stream that
broke), it is charged an estimate, marked as estimated: for a stream the prompt plus the
output delivered, never more than ``max_output_tokens``; for a unary call the prompt plus
``max_output_tokens`` (the upstream may have generated that much before the cut). An
upstream that answered with an error status (it refused the request) is charged nothing.
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

from ..base import (
    Completion,
    CompletionChunk,
    Provider,
    ProviderCall,
    ToolCallAssembler,
    ToolCallDelta,
    Usage,
)
from ..catalog import Catalog
from ..config import ExecutionConfig, ModelSpec
from ..decision import (
    CANCELLED,
    ERROR,
    OK,
    AttemptRecord,
    Decision,
    ExecutionSummary,
    StreamOpened,
)
from ..errors import ExecutionDeadlineExceeded, ExecutionFailed, ProviderError
from ..execution.circuit import CircuitBreaker
from ..execution.retry import Backoff, Deadline
from ..tokens import estimate_text_tokens
from ..types import RoutingRequest
from ..upstream import check_supported, redact
from .budget import AttemptBudget

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a stream hands its caller: first which model answers, then text deltas and pieces
#: of tool calls.
StreamEvent = StreamOpened | str | ToolCallDelta


class Executor:
    """The attempt policy, built once per server; :meth:`start` makes one :class:`Run`."""

    def __init__(
        self,
        catalog: Catalog,
        config: ExecutionConfig,
        breaker: CircuitBreaker,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config
        self.breaker = breaker
        self.clock = clock
        self.sleep = sleep
        self.backoff = Backoff(config.backoff_base_s, config.backoff_max_s, rng or random.Random())

    def start(
        self,
        request: RoutingRequest,
        decision: Decision,
        budget: AttemptBudget | None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        streaming: bool = False,
    ) -> Run:
        """A run of ``decision``; ``timeout_s`` is the caller's remaining deadline
        (``None``: none), capped by the server's ``request_timeout_s``."""
        return Run(self, request, decision, budget, timeout_s, temperature, streaming)


@dataclass(slots=True)
class _Attempt:
    spec: ModelSpec
    provider: Provider
    call: ProviderCall
    retry: int
    started: float
    started_ns: int
    #: Text delivered to the caller so far (streams), for estimating consumed output.
    parts: list[str] = field(default_factory=list)
    #: Its record is written (answered, failed or cancelled): it is never recorded twice.
    ended: bool = False


@dataclass(slots=True)
class _OpenStream:
    iterator: AsyncIterator[CompletionChunk]
    buffered: list[CompletionChunk] = field(default_factory=list)
    ended: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None
    tools: ToolCallAssembler = field(default_factory=ToolCallAssembler)


class Run:
    """One execution: its deadline, attempts, usage and cost."""

    def __init__(
        self,
        executor: Executor,
        request: RoutingRequest,
        decision: Decision,
        budget: AttemptBudget | None,
        timeout_s: float | None,
        temperature: float | None,
        streaming: bool,
    ) -> None:
        self.executor = executor
        self.request = request
        self.decision = decision
        self.budget = budget
        self.temperature = temperature
        self.streaming = streaming
        self.deadline = Deadline(timeout_s, executor.config.request_timeout_s, executor.clock)
        self.records: list[AttemptRecord] = []
        self.skipped: list[tuple[str, str]] = []
        self.errors: list[ProviderError] = []
        self.stream_started = False
        self._answer: tuple[AttemptRecord, Completion | _OpenStream, str] | None = None

    # -- the two ways to run -----------------------------------------------------------------

    async def complete(self) -> ExecutionSummary:
        """The whole answer, or ``ExecutionFailed`` / ``ExecutionDeadlineExceeded``."""
        completion, _ = await self._failover(self._complete_once)
        self._answer = (self.records[-1], completion, completion.text)
        return self.summary()

    async def stream(self) -> AsyncGenerator[StreamEvent, None]:
        """Which model answers, then text deltas and tool-call pieces as they arrive;
        :meth:`summary` afterwards."""
        opened, attempt = await self._failover(self._open_stream)
        try:
            yield StreamOpened(self.decision, attempt.spec.name, attempt.spec.provider)
            async with contextlib.aclosing(opened.iterator):  # type: ignore[type-var]
                for chunk in opened.buffered:
                    for event in self._absorb(opened, attempt, chunk):
                        self.stream_started = True
                        yield event
                while not opened.ended:
                    try:
                        async with asyncio.timeout(max(self.deadline.remaining(), 0.0)):
                            chunk = await anext(opened.iterator)
                    except StopAsyncIteration:
                        break
                    except Exception as exc:
                        await self._fail(attempt, exc, cut_short=True)
                        raise self.failure(stream_started=True) from None
                    for event in self._absorb(opened, attempt, chunk):
                        yield event
        except (asyncio.CancelledError, GeneratorExit):
            # Cancelled while waiting on the upstream, or closed by a caller that stopped
            # reading at a yield: either way the upstream worked for this attempt.
            if not attempt.ended:
                await self._cancel(attempt)
            raise
        estimated = opened.usage is None
        usage = opened.usage or self._consumed(attempt)
        record = await self._succeed(attempt, usage, estimated=estimated)
        self._answer = (record, opened, "")

    # -- one attempt ---------------------------------------------------------------------------

    async def _complete_once(self, attempt: _Attempt) -> Completion:
        check_supported(attempt.call, attempt.provider.supports, attempt.spec.provider)
        async with asyncio.timeout(max(self.deadline.remaining(), 0.0)):
            completion = await attempt.provider.complete(attempt.call)
        await self._succeed(attempt, completion.usage)
        return completion

    async def _open_stream(self, attempt: _Attempt) -> _OpenStream:
        """Call until the first delta arrives (failover is possible until then)."""
        check_supported(attempt.call, attempt.provider.supports, attempt.spec.provider)
        iterator = aiter(attempt.provider.stream(attempt.call))
        opened = _OpenStream(iterator)
        try:
            while True:
                async with asyncio.timeout(max(self.deadline.remaining(), 0.0)):
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        opened.ended = True
                        return opened
                opened.buffered.append(chunk)
                if chunk.delta or chunk.tool_call_delta is not None:
                    return opened
        except BaseException:
            await _aclose(iterator)
            raise

    @staticmethod
    def _absorb(
        opened: _OpenStream, attempt: _Attempt, chunk: CompletionChunk
    ) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if chunk.delta:
            attempt.parts.append(chunk.delta)
            events.append(chunk.delta)
        if chunk.tool_call_delta is not None:
            opened.tools.add(chunk.tool_call_delta)
            attempt.parts.append(chunk.tool_call_delta.arguments)
            events.append(chunk.tool_call_delta)
        if chunk.usage is not None:
            opened.usage = chunk.usage
        if chunk.finish_reason:
            opened.finish_reason = chunk.finish_reason
        return events

    # -- the loop ------------------------------------------------------------------------------

    async def _failover(self, call_once: Callable[[_Attempt], Awaitable[T]]) -> tuple[T, _Attempt]:
        executor = self.executor
        config = executor.config
        larger_than = 0  # after a context-length failure, only larger windows are tried
        for candidate in self.decision.selection.candidates:
            spec = candidate.model
            if spec.context_window_tokens <= larger_than:
                self.skipped.append((spec.name, "context window not larger than the last tried"))
                continue
            reason = executor.catalog.unavailable_reason(spec)
            if reason is not None:
                self.skipped.append((spec.name, reason))
                continue
            provider = executor.catalog.providers[spec.provider]
            for retry in range(config.max_attempts_per_model):
                if self.deadline.expired:
                    raise self.failure()
                if self.budget is not None:
                    refusal = await self.budget.admit(candidate, self.records)
                    if refusal is not None:
                        self.skipped.append((spec.name, refusal))
                        break
                attempt = self._begin(spec, provider, retry)
                try:
                    return await call_once(attempt), attempt
                except asyncio.CancelledError:
                    await self._cancel(attempt)
                    raise
                except Exception as exc:
                    error = await self._fail(attempt, exc)
                if self.deadline.expired:
                    raise self.failure()
                if error.kind == "context_length":
                    larger_than = spec.context_window_tokens
                    break
                if not error.retryable or retry + 1 >= config.max_attempts_per_model:
                    break
                if executor.breaker.open_reason(spec.name) is not None:
                    break  # this failure opened the circuit: stop hammering the model
                delay = executor.backoff.delay(retry, error.retry_after_s)
                if delay is None or delay >= self.deadline.remaining():
                    break
                await executor.sleep(delay)
        raise self.failure()

    def _begin(self, spec: ModelSpec, provider: Provider, retry: int) -> _Attempt:
        call = ProviderCall(
            model=spec.upstream_model,
            messages=self.request.messages,
            max_output_tokens=self.decision.selection.max_output_tokens,
            timeout_s=max(self.deadline.remaining(), 0.0),
            temperature=self.temperature,
            options=self.request.options,
        )
        return _Attempt(spec, provider, call, retry, self.executor.clock(), time.time_ns())

    # -- how an attempt ended ------------------------------------------------------------------

    def _record(self, attempt: _Attempt, outcome: str, **fields: Any) -> AttemptRecord:
        usage: Usage | None = fields.get("usage")
        record = AttemptRecord(
            model=attempt.spec.name,
            provider=attempt.spec.provider,
            outcome=outcome,
            latency_ms=(self.executor.clock() - attempt.started) * 1000.0,
            cost_usd=attempt.spec.cost_usd(usage.input_tokens, usage.output_tokens)
            if usage
            else 0.0,
            retry=attempt.retry,
            started_ns=attempt.started_ns,
            **fields,
        )
        self.records.append(record)
        attempt.ended = True
        return record

    async def _succeed(
        self, attempt: _Attempt, usage: Usage, *, estimated: bool = False
    ) -> AttemptRecord:
        await self.executor.breaker.record_success(attempt.spec.name)
        return self._record(attempt, OK, usage=usage, usage_estimated=estimated)

    async def _fail(
        self, attempt: _Attempt, exc: BaseException, *, cut_short: bool = False
    ) -> ProviderError:
        error = self._as_provider_error(attempt, exc)
        self.errors.append(error)
        breaker = self.executor.breaker
        opened = False
        # A call cut short by the caller's own deadline says nothing about the model, nor
        # does one refused before it was sent.
        if error.kind != "unsupported" and not (error.kind == "timeout" and self.deadline.expired):
            was_open = breaker.open_reason(attempt.spec.name) is not None
            await breaker.record_failure(attempt.spec.name, error.kind)
            opened = not was_open and breaker.open_reason(attempt.spec.name) is not None
        # A timeout or a broken stream was cut short after the upstream began working:
        # it consumed the prompt and what it sent. An error status means it refused.
        consumed = cut_short or error.kind == "timeout"
        self._record(
            attempt,
            ERROR,
            error_type=error.kind,
            error_message=str(error),
            usage=self._consumed(attempt) if consumed else None,
            usage_estimated=consumed,
            opened_circuit=opened,
        )
        log.warning(
            "attempt on %s (%s) failed: %s: %s",
            attempt.spec.name,
            attempt.spec.provider,
            error.kind,
            error,
        )
        return error

    async def _cancel(self, attempt: _Attempt) -> None:
        self._record(
            attempt,
            CANCELLED,
            error_type="cancelled",
            usage=self._consumed(attempt),
            usage_estimated=True,
        )

    def _consumed(self, attempt: _Attempt) -> Usage:
        """What a call cut short consumed. A stream: the prompt and the output sent so far,
        capped at the attempt's ceiling (a runaway estimate must not overcharge). A unary
        call: the ceiling itself, since the upstream may have generated up to
        ``max_output_tokens`` before the cut and nothing says how many."""
        ceiling = attempt.call.max_output_tokens
        if self.streaming:
            text = "".join(attempt.parts)
            output = min(estimate_text_tokens(text) if text else 0, ceiling)
        else:
            output = ceiling
        return Usage(input_tokens=self.decision.selection.input_tokens, output_tokens=output)

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

    # -- results -------------------------------------------------------------------------------

    def summary(self) -> ExecutionSummary:
        """What happened so far: the answer after success, every attempt's cost always."""
        records = tuple(self.records)
        answer = self._answer
        if answer is not None:
            record, result, text = answer
            usage = record.usage or Usage()
            if isinstance(result, Completion):
                finish_reason, tool_calls = result.finish_reason, result.tool_calls
            else:
                finish_reason = result.finish_reason or "stop"
                tool_calls = result.tools.tool_calls
        else:
            usage = Usage(
                input_tokens=sum(r.usage.input_tokens for r in records if r.usage),
                output_tokens=sum(r.usage.output_tokens for r in records if r.usage),
            )
            finish_reason, tool_calls, text = "", (), ""
        return ExecutionSummary(
            decision=self.decision,
            attempts=records,
            usage=usage,
            cost_usd=sum(r.cost_usd for r in records),
            latency_ms=self.deadline.elapsed_ms(),
            text=text,
            model=answer[0].model if answer else "",
            provider=answer[0].provider if answer else "",
            finish_reason=finish_reason,
            tool_calls=tuple(tool_calls),
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
