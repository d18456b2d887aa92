"""Group-committed decision log: rows leave the request path, yet reads, feedback and a
graceful stop behave as if every row were written at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from modelrouter.state.batching import BatchedDecisionLog
from modelrouter.state.interfaces import DecisionRecord, FeedbackRecord, StorageUnavailable
from modelrouter.state.memory import MemoryDecisionLog
from modelrouter.state.sqlite import SqliteDecisionLog

NOW = 1_750_000_000.0


def decision(i: int) -> DecisionRecord:
    return DecisionRecord(
        f"d{i}", "acme", NOW + i, "route", "SIMPLE", "QA", "rules", (), "tiny", 0.001, "cheapest",
    )  # fmt: skip


class SlowLog(MemoryDecisionLog):
    """A memory log whose commits take a while, can fail, and are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def record_many(self, decisions: Sequence[DecisionRecord]) -> None:
        await self.gate.wait()
        if self.fail:
            raise StorageUnavailable("store down")
        self.commits.append(len(decisions))
        for d in decisions:
            await self.record(d)


async def test_a_buffered_decision_is_visible_to_get_before_it_is_committed():
    inner = SlowLog()
    log = BatchedDecisionLog(inner)
    await log.open()
    inner.gate.clear()  # hold every commit
    await log.record(decision(1))
    assert await inner.get("d1") is None
    assert await log.get("d1") == decision(1)
    inner.gate.set()
    await log.aclose()
    assert await inner.get("d1") == decision(1)


async def test_concurrent_decisions_are_committed_in_groups():
    inner = SlowLog()
    log = BatchedDecisionLog(inner)
    await log.open()
    inner.gate.clear()
    await log.record(decision(0))
    await asyncio.sleep(0)  # the first commit starts and waits at the gate
    await asyncio.gather(*(log.record(decision(i)) for i in range(1, 200)))
    inner.gate.set()
    await log.flush()
    assert sum(inner.commits) == 200
    assert len(inner.commits) <= 3, inner.commits
    await log.aclose()


async def test_feedback_on_a_buffered_decision_commits_the_decision_first(tmp_path: Path):
    log = BatchedDecisionLog(SqliteDecisionLog(str(tmp_path / "log.db")))
    await log.open()
    await log.record(decision(7))
    feedback = FeedbackRecord("d7", "acme", "default", 0.9, True, created_at=NOW)
    assert (await log.add_feedback(feedback, max_sources=4)).status == "created"
    assert log.buffered == 0
    assert [row.decision.decision_id async for row in log.export()] == ["d7"]
    await log.aclose()


async def test_a_graceful_stop_commits_every_buffered_decision(tmp_path: Path):
    path = str(tmp_path / "log.db")
    log = BatchedDecisionLog(SqliteDecisionLog(path))
    await log.open()
    for i in range(50):
        await log.record(decision(i))
    await log.aclose()

    reopened = SqliteDecisionLog(path)
    await reopened.open()
    assert len(await reopened.recent(None, 100)) == 50
    await reopened.aclose()


async def test_the_buffer_is_bounded_when_the_store_keeps_failing():
    inner = SlowLog()
    inner.fail = True
    log = BatchedDecisionLog(inner, max_pending=10, retry_delay_s=0.01)
    await log.open()
    with pytest.raises(StorageUnavailable):
        for i in range(1000):
            await log.record(decision(i))
            await asyncio.sleep(0)
    assert log.buffered <= 10
    inner.fail = False  # the store is back: the next retry commits what was buffered
    async with asyncio.timeout(5):
        while log.buffered:
            await asyncio.sleep(0.01)
    assert len(await inner.recent(None, 100)) == log.max_pending
    await log.aclose()
