"""SQLite backends: the embedded default, no server needed.

WAL mode lets several processes on one host share the file (``serve --workers``); each
write is one ``BEGIN IMMEDIATE`` transaction, so check-and-reserve is atomic across
processes. ``synchronous=FULL`` makes a committed write survive a crash of the process
or the host. Calls run in a worker thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .interfaces import (
    ArmStats,
    Bucket,
    BucketUsage,
    DecisionLog,
    DecisionRecord,
    ExportRow,
    FeedbackRecord,
    HotState,
    OwnsDatabase,
    StorageUnavailable,
)
from .retry import RetryPolicy
from .rows import DECISION_COLUMNS, decision_from_row, decision_row, feedback_from_row

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_counters (
    tenant TEXT NOT NULL, win TEXT NOT NULL, label TEXT NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, win, label));
CREATE TABLE IF NOT EXISTS arm_stats (
    key TEXT NOT NULL, model TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0, reward_sum REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (key, model));
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_at REAL NOT NULL,
    kind TEXT NOT NULL, complexity TEXT NOT NULL, task_type TEXT NOT NULL,
    classifier TEXT NOT NULL, candidates TEXT NOT NULL, chosen_model TEXT NOT NULL,
    estimated_cost_usd REAL NOT NULL, reason TEXT NOT NULL, explored INTEGER NOT NULL,
    prompt TEXT, actual_cost_usd REAL, latency_ms REAL, outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_tenant ON decisions (tenant, created_at);
CREATE TABLE IF NOT EXISTS feedback (
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id), source TEXT NOT NULL,
    tenant TEXT NOT NULL, score REAL NOT NULL, success INTEGER NOT NULL,
    comment TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (decision_id, source));
"""


class SqliteDatabase:
    """One connection to one file, used from one worker thread at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.retry = RetryPolicy()

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(Path(self.path).expanduser()) if self.path != ":memory:" else self.path,
            timeout=30.0,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        return conn

    async def open(self) -> None:
        try:
            self._conn = await asyncio.to_thread(self._connect)
        except sqlite3.Error as error:
            raise StorageUnavailable(
                f"cannot open SQLite database {self.path!r}: {error}"
            ) from error

    async def aclose(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None

    async def run(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            assert self._conn is not None, "SqliteDatabase.open() was not awaited"
            with self._lock:
                return work(self._conn)

        return await self.retry.run(
            "sqlite", operation, lambda: asyncio.to_thread(locked), (sqlite3.OperationalError,)
        )

    async def transaction(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def atomic(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.run(operation, atomic)


class SqliteHotState(OwnsDatabase, HotState):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.db = SqliteDatabase(path)

    async def reserve(self, tenant: str, amount: int, buckets: Sequence[Bucket]) -> Bucket | None:
        def work(conn: sqlite3.Connection) -> Bucket | None:
            for bucket in buckets:
                row = conn.execute(
                    "SELECT spent + reserved FROM budget_counters "
                    "WHERE tenant=? AND win=? AND label=?",
                    (tenant, bucket.window, bucket.label),
                ).fetchone()
                if (row[0] if row else 0) + amount > bucket.limit:
                    return bucket
            for bucket in buckets:
                conn.execute(
                    "INSERT INTO budget_counters (tenant, win, label, reserved) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (tenant, win, label) "
                    "DO UPDATE SET reserved = reserved + excluded.reserved",
                    (tenant, bucket.window, bucket.label, amount),
                )
            return None

        return await self.db.transaction("reserve", work)

    async def settle(
        self, tenant: str, buckets: Sequence[Bucket], reserved: int, actual: int
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for bucket in buckets:
                conn.execute(
                    "INSERT INTO budget_counters (tenant, win, label, spent) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (tenant, win, label) "
                    "DO UPDATE SET spent = spent + excluded.spent, reserved = max(reserved - ?, 0)",
                    (tenant, bucket.window, bucket.label, actual, reserved),
                )

        await self.db.transaction("settle", work)

    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        def work(conn: sqlite3.Connection) -> list[BucketUsage]:
            result = []
            for bucket in buckets:
                row = conn.execute(
                    "SELECT spent, reserved FROM budget_counters "
                    "WHERE tenant=? AND win=? AND label=?",
                    (tenant, bucket.window, bucket.label),
                ).fetchone()
                result.append(BucketUsage(*(row or (0, 0))))
            return result

        return await self.db.run("usage", work)

    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        def work(conn: sqlite3.Connection) -> dict[str, ArmStats]:
            rows = conn.execute(
                "SELECT model, count, reward_sum FROM arm_stats WHERE key=?", (key,)
            )
            return {model: ArmStats(count, total) for model, count, total in rows}

        return await self.db.run("arm_stats", work)

    async def record_reward(self, key: str, model: str, reward: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO arm_stats (key, model, count, reward_sum) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (key, model) DO UPDATE SET count = count + 1, "
                "reward_sum = reward_sum + excluded.reward_sum",
                (key, model, reward),
            )

        await self.db.transaction("record_reward", work)


class SqliteDecisionLog(OwnsDatabase, DecisionLog):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.db = SqliteDatabase(path)

    async def record(self, decision: DecisionRecord) -> None:
        placeholders = ", ".join("?" * 16)
        await self.db.run(
            "record",
            lambda conn: conn.execute(
                f"INSERT OR REPLACE INTO decisions ({DECISION_COLUMNS}) VALUES ({placeholders})",
                decision_row(decision),
            ),
        )

    async def get(self, decision_id: str) -> DecisionRecord | None:
        def work(conn: sqlite3.Connection) -> DecisionRecord | None:
            row = conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM decisions WHERE decision_id=?", (decision_id,)
            ).fetchone()
            return decision_from_row(row) if row else None

        return await self.db.run("get", work)

    async def add_feedback(self, feedback: FeedbackRecord) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO feedback "
                "(decision_id, source, tenant, score, success, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (decision_id, source) DO NOTHING",
                (
                    feedback.decision_id,
                    feedback.source,
                    feedback.tenant,
                    feedback.score,
                    feedback.success,
                    feedback.comment,
                    feedback.created_at,
                ),
            )
            return cursor.rowcount == 1

        return await self.db.run("add_feedback", work)

    async def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        def work(conn: sqlite3.Connection) -> list[ExportRow]:
            where = "WHERE d.decision_id IN (SELECT decision_id FROM feedback)"
            params: tuple[str, ...] = ()
            if tenant is not None:
                where += " AND d.tenant = ?"
                params = (tenant,)
            columns = ", ".join(f"d.{c.strip()}" for c in DECISION_COLUMNS.split(","))
            decisions = conn.execute(
                f"SELECT {columns} FROM decisions d {where} ORDER BY d.created_at", params
            ).fetchall()
            rows = []
            for row in decisions:
                feedback = conn.execute(
                    "SELECT decision_id, source, tenant, score, success, comment, created_at "
                    "FROM feedback WHERE decision_id=? ORDER BY created_at",
                    (row[0],),
                ).fetchall()
                rows.append(
                    ExportRow(decision_from_row(row), tuple(map(feedback_from_row, feedback)))
                )
            return rows

        for row in await self.db.run("export", work):
            yield row
