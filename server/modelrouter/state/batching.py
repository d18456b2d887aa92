"""Group commits of the decision log, off the request path.

Writing one decision row per request, inside the request, puts a transaction (and with
SQLite ``synchronous=FULL`` an fsync; with PostgreSQL a round trip) on every Route and
Execute, and serialises them behind the database's write lock: throughput is capped at
one request per commit. :class:`BatchedDecisionLog` wraps a :class:`DecisionLog`:
``record`` puts the row in a bounded in-memory buffer and returns; one background task
commits everything buffered in one transaction (``record_many``), then whatever arrived
meanwhile, and so on. Under load a commit carries as many rows as arrived during the
previous one; when idle, a row is committed at once.

What a caller may rely on:

- **Reads see buffered rows.** ``get`` answers from the buffer first, so feedback sent
  right after Route finds its decision. Before ``add_feedback`` the decision's row is
  committed if it is still buffered: feedback stays durable before it is acknowledged,
  and never points at a row that is not there. ``recent``, ``export`` and ``sweep``
  commit the buffer first too.
- **Loss window.** A decision row that was recorded but not yet committed is lost if the
  process dies (SIGKILL, OOM, power loss): at most the rows buffered at that moment,
  which is what arrived during one commit (a few milliseconds of traffic) and never more
  than ``max_pending``. Budget spend is not affected (it lives in the hot store and is
  written in the call); only the log rows, which feed the dashboard and the export, are.
  A graceful stop (``aclose``: SIGTERM, ``server.stop``) commits everything first.
- **Bounded.** With ``max_pending`` rows buffered, ``record`` waits for the commit in
  flight (back-pressure instead of growth). If the store keeps failing, rows stay
  buffered and commits are retried; once the buffer is full ``record`` raises
  ``StorageUnavailable``, as an unbuffered write would.
- **Replicas.** Another replica sharing the store sees a decision once it is committed.
  A ``get`` that finds nothing waits ``miss_wait_s`` and looks once more, so feedback
  landing on another replica right after Route still finds the decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from .interfaces import (
    DecisionLog,
    DecisionRecord,
    ExportRow,
    FeedbackRecord,
    FeedbackWrite,
    StorageUnavailable,
)

__all__ = ["BatchedDecisionLog"]

log = logging.getLogger(__name__)


class BatchedDecisionLog(DecisionLog):
    """A :class:`DecisionLog` whose ``record`` is group-committed in the background."""

    def __init__(
        self,
        inner: DecisionLog,
        *,
        max_batch: int = 500,
        max_pending: int = 10_000,
        retry_delay_s: float = 0.5,
        miss_wait_s: float = 0.1,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        #: Rows in one transaction at most.
        self.max_batch = max_batch
        #: Rows buffered at most (the loss window's bound).
        self.max_pending = max_pending
        self.retry_delay_s = retry_delay_s
        self.miss_wait_s = miss_wait_s
        # Recorded, not yet handed to a commit; insertion-ordered, keyed by decision id
        # (a later record of the same id replaces the buffered one, as the store would).
        self._pending: dict[str, DecisionRecord] = {}
        # Handed to the commit in flight; dropped from here only once it is committed.
        self._committing: dict[str, DecisionRecord] = {}
        self._wake = asyncio.Event()
        self._committed = asyncio.Condition()
        self._failing: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        """Rows recorded but not yet committed."""
        return len(self._pending) + len(self._committing)

    async def open(self) -> None:
        await self.inner.open()
        self._task = asyncio.get_running_loop().create_task(
            self._commit_loop(), name=f"decision-log group commit ({self.name})"
        )

    async def aclose(self) -> None:
        """Commit everything buffered, stop the background task, close the store."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            self._pending = {**self._committing, **self._pending}
            self._committing = {}
            while self._pending:
                await self._commit_once()
        except Exception as error:
            log.error(
                "decision log %s: %d buffered decisions lost at shutdown: %s",
                self.name,
                self.buffered,
                error,
            )
        finally:
            await self.inner.aclose()

    async def record(self, decision: DecisionRecord) -> None:
        if self._task is None:  # not opened, or closing: write through
            await self.inner.record(decision)
            return
        while len(self._pending) >= self.max_pending:
            if self._failing is not None:
                raise StorageUnavailable(
                    f"decision log {self.name!r}: {self.max_pending} decisions wait for a "
                    f"store that keeps failing ({self._failing})"
                )
            async with self._committed:
                await self._committed.wait()
        self._pending.pop(decision.decision_id, None)
        self._pending[decision.decision_id] = decision
        self._wake.set()

    async def flush(self) -> None:
        """Return once every row recorded before the call is committed."""
        if self._task is None or not self.buffered:
            return
        waiting = set(self._pending) | set(self._committing)
        loop = asyncio.get_running_loop()
        # A failed commit is retried after ``retry_delay_s``: give it a few retries before
        # telling the caller the store is unavailable.
        give_up_at: float | None = None
        async with self._committed:
            while not waiting.isdisjoint(self._pending) or not waiting.isdisjoint(self._committing):
                if self._failing is not None:
                    give_up_at = give_up_at or loop.time() + 4 * self.retry_delay_s
                    if loop.time() >= give_up_at:
                        raise StorageUnavailable(
                            f"decision log {self.name!r}: cannot commit: {self._failing}"
                        )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.retry_delay_s):
                        await self._committed.wait()

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                try:
                    await self._commit_once()
                except Exception as error:  # kept buffered; retried after a pause
                    if self._failing is None:
                        log.warning(
                            "decision log %s: commit failed, retrying: %s", self.name, error
                        )
                    self._failing = error
                    async with self._committed:
                        self._committed.notify_all()
                    await asyncio.sleep(self.retry_delay_s)

    async def _commit_once(self) -> None:
        """Commit up to ``max_batch`` of the oldest buffered rows in one transaction."""
        batch: dict[str, DecisionRecord] = {}
        for decision_id in list(self._pending)[: self.max_batch]:
            batch[decision_id] = self._pending.pop(decision_id)
        self._committing = batch
        try:
            await self.inner.record_many(list(batch.values()))
        except BaseException:
            # Back to the front of the buffer, unless a newer version arrived meanwhile.
            self._pending = {**batch, **self._pending}
            self._committing = {}
            raise
        self._committing = {}
        self._failing = None
        async with self._committed:
            self._committed.notify_all()

    async def record_many(self, decisions: Sequence[DecisionRecord]) -> None:
        for decision in decisions:
            await self.record(decision)

    async def get(self, decision_id: str) -> DecisionRecord | None:
        buffered = self._pending.get(decision_id) or self._committing.get(decision_id)
        if buffered is not None:
            return buffered
        found = await self.inner.get(decision_id)
        if found is None and self.miss_wait_s > 0:
            # Perhaps another replica routed it and has not committed it yet.
            await asyncio.sleep(self.miss_wait_s)
            found = self._pending.get(decision_id) or await self.inner.get(decision_id)
        return found

    async def add_feedback(self, feedback: FeedbackRecord, max_sources: int) -> FeedbackWrite:
        if feedback.decision_id in self._pending or feedback.decision_id in self._committing:
            await self.flush()
        return await self.inner.add_feedback(feedback, max_sources)

    async def sweep(self, before: float, limit: int) -> int:
        await self.flush()
        return await self.inner.sweep(before, limit)

    async def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        await self.flush()
        async for row in self.inner.export(tenant):
            yield row

    async def recent(self, tenant: str | None, limit: int) -> list[DecisionRecord]:
        await self.flush()
        return await self.inner.recent(tenant, limit)
