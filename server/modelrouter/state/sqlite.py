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
    IN_FLIGHT,
    TOMBSTONE_TTL_S,
    ArmStats,
    Bucket,
    BucketUsage,
    DecisionLog,
    DecisionRecord,
    ExportRow,
    FeedbackRecord,
    FeedbackWrite,
    HotState,
    OwnsDatabase,
    StorageUnavailable,
)
from .memory import same_feedback
from .retry import RetryPolicy
from .rows import (
    ADDED_DECISION_COLUMNS,
    DECISION_COLUMNS,
    FEEDBACK_COLUMNS,
    buckets_from_json,
    buckets_to_json,
    decision_from_row,
    decision_row,
    feedback_from_row,
)

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
    prompt TEXT, actual_cost_usd REAL, latency_ms REAL, outcome TEXT NOT NULL,
    router_version TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS decisions_tenant ON decisions (tenant, created_at);
CREATE INDEX IF NOT EXISTS decisions_created ON decisions (created_at);
CREATE TABLE IF NOT EXISTS reservations (
    tenant TEXT NOT NULL, attempt_id TEXT NOT NULL, amount INTEGER NOT NULL,
    created_at REAL NOT NULL, buckets TEXT NOT NULL, state TEXT NOT NULL,
    closed_at REAL, actual INTEGER, estimated INTEGER,
    PRIMARY KEY (tenant, attempt_id));
CREATE INDEX IF NOT EXISTS reservations_held_tenant
    ON reservations (tenant) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS reservations_held_age
    ON reservations (created_at) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS reservations_closed
    ON reservations (closed_at) WHERE state <> 'held';
CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY, win INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS feedback_sources (
    decision_id TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (decision_id, source));
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
        _add_missing_columns(conn)
        return conn

    async def open(self) -> None:
        try:
            self._conn = await asyncio.to_thread(self._connect)
        except sqlite3.Error as error:
            raise StorageUnavailable(
                f"cannot open SQLite database {self.path!r}: {error}"
            ) from error

    async def aclose(self) -> None:
        def close() -> None:
            # Under the lock: closing while a worker thread still runs a statement on the
            # connection crashes the interpreter (a cancelled caller leaves its thread
            # running).
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)

    async def run(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                if self._conn is None:
                    raise StorageUnavailable("the SQLite database is closed")
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

    async def reserve(
        self,
        tenant: str,
        attempt_id: str,
        amount: int,
        buckets: Sequence[Bucket],
        *,
        now: float,
        max_in_flight: int,
    ) -> Bucket | None:
        def work(conn: sqlite3.Connection) -> Bucket | None:
            if conn.execute(
                "SELECT 1 FROM reservations WHERE tenant=? AND attempt_id=?", (tenant, attempt_id)
            ).fetchone():
                return None
            if max_in_flight:
                (held,) = conn.execute(
                    "SELECT count(*) FROM reservations WHERE tenant=? AND state='held'", (tenant,)
                ).fetchone()
                if held >= max_in_flight:
                    return IN_FLIGHT
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
            conn.execute(
                "INSERT INTO reservations (tenant, attempt_id, amount, created_at, buckets, state) "
                "VALUES (?, ?, ?, ?, ?, 'held')",
                (tenant, attempt_id, amount, now, buckets_to_json(buckets)),
            )
            return None

        return await self.db.transaction("reserve", work)

    async def settle(
        self,
        tenant: str,
        attempt_id: str,
        buckets: Sequence[Bucket],
        actual: int,
        *,
        estimated: bool,
        now: float,
    ) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT state, amount, buckets FROM reservations WHERE tenant=? AND attempt_id=?",
                (tenant, attempt_id),
            ).fetchone()
            if row is not None and row[0] == "settled":
                return False
            if row is not None and row[0] == "held":
                _release(conn, tenant, buckets_from_json(row[2]), row[1])
            for bucket in buckets:
                conn.execute(
                    "INSERT INTO budget_counters (tenant, win, label, spent) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (tenant, win, label) DO UPDATE SET spent = spent + excluded.spent",
                    (tenant, bucket.window, bucket.label, actual),
                )
            conn.execute(
                "INSERT INTO reservations (tenant, attempt_id, amount, created_at, buckets, state, "
                "closed_at, actual, estimated) VALUES (?, ?, 0, ?, '[]', 'settled', ?, ?, ?) "
                "ON CONFLICT (tenant, attempt_id) DO UPDATE SET state = 'settled', "
                "closed_at = excluded.closed_at, actual = excluded.actual, "
                "estimated = excluded.estimated",
                (tenant, attempt_id, now, now, actual, estimated),
            )
            return True

        return await self.db.transaction("settle", work)

    async def reap(self, cutoff: float, limit: int, now: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            stale = conn.execute(
                "SELECT tenant, attempt_id, amount, buckets FROM reservations "
                "WHERE state='held' AND created_at < ? ORDER BY created_at LIMIT ?",
                (cutoff, limit),
            ).fetchall()
            for tenant, attempt_id, amount, buckets in stale:
                _release(conn, tenant, buckets_from_json(buckets), amount)
                conn.execute(
                    "UPDATE reservations SET state='reaped', closed_at=? "
                    "WHERE tenant=? AND attempt_id=?",
                    (now, tenant, attempt_id),
                )
            conn.execute(
                "DELETE FROM reservations WHERE rowid IN (SELECT rowid FROM reservations "
                "WHERE state <> 'held' AND closed_at < ? LIMIT ?)",
                (now - TOMBSTONE_TTL_S, limit),
            )
            return len(stale)

        return await self.db.transaction("reap", work)

    async def in_flight(self, tenant: str) -> int:
        def work(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "SELECT count(*) FROM reservations WHERE tenant=? AND state='held'", (tenant,)
                ).fetchone()[0]
            )

        return await self.db.run("in_flight", work)

    async def hit(self, key: str, window_s: int, now: float) -> int:
        window = int(now // window_s)

        def work(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "INSERT INTO rate_counters (key, win, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "count = CASE WHEN win = excluded.win THEN count + 1 ELSE 1 END, "
                    "win = excluded.win RETURNING count",
                    (key, window),
                ).fetchone()[0]
            )

        return await self.db.transaction("hit", work)

    async def session_model(self, key: str, now: float) -> str | None:
        def work(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT model FROM sessions WHERE key=? AND expires_at > ?", (key, now)
            ).fetchone()
            return str(row[0]) if row else None

        return await self.db.transaction("session_model", work)

    async def stick_session(self, key: str, model: str, ttl_s: float, now: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sessions (key, model, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET model=excluded.model, "
                "expires_at=excluded.expires_at",
                (key, model, now + ttl_s),
            )
            # Expired sessions go a few at a time, so the table stays as small as the
            # sessions in use without a sweep of its own.
            conn.execute(
                "DELETE FROM sessions WHERE key IN "
                "(SELECT key FROM sessions WHERE expires_at <= ? LIMIT 16)",
                (now,),
            )

        await self.db.transaction("stick_session", work)

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

    async def record_reward(
        self, key: str, model: str, reward: float, previous: float | None = None
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            added, delta = (1, reward) if previous is None else (0, reward - previous)
            # Additive both ways, so a replacement landing before the observation it
            # replaces (concurrent feedback) still sums right.
            conn.execute(
                "INSERT INTO arm_stats (key, model, count, reward_sum) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, model) DO UPDATE SET count = count + excluded.count, "
                "reward_sum = reward_sum + excluded.reward_sum",
                (key, model, added, delta),
            )

        await self.db.transaction("record_reward", work)


class SqliteDecisionLog(OwnsDatabase, DecisionLog):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.db = SqliteDatabase(path)

    async def record(self, decision: DecisionRecord) -> None:
        placeholders = ", ".join("?" * len(DECISION_COLUMNS.split(",")))
        await self.db.run(
            "record",
            lambda conn: conn.execute(
                f"INSERT OR REPLACE INTO decisions ({DECISION_COLUMNS}) VALUES ({placeholders})",
                decision_row(decision),
            ),
        )

    async def record_many(self, decisions: Sequence[DecisionRecord]) -> None:
        placeholders = ", ".join("?" * len(DECISION_COLUMNS.split(",")))
        rows = [decision_row(d) for d in decisions]
        await self.db.transaction(
            "record_many",
            lambda conn: conn.executemany(
                f"INSERT OR REPLACE INTO decisions ({DECISION_COLUMNS}) VALUES ({placeholders})",
                rows,
            ),
        )

    async def get(self, decision_id: str) -> DecisionRecord | None:
        def work(conn: sqlite3.Connection) -> DecisionRecord | None:
            row = conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM decisions WHERE decision_id=?", (decision_id,)
            ).fetchone()
            return decision_from_row(row) if row else None

        return await self.db.run("get", work)

    async def add_feedback(self, feedback: FeedbackRecord, max_sources: int) -> FeedbackWrite:
        def work(conn: sqlite3.Connection) -> FeedbackWrite:
            f = feedback
            sources = {
                source
                for (source,) in conn.execute(
                    "SELECT source FROM feedback_sources WHERE decision_id=?", (f.decision_id,)
                )
            }
            if f.source not in sources and len(sources) >= max_sources:
                return FeedbackWrite("too_many_sources")
            row = conn.execute(
                f"SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE decision_id=? "
                "ORDER BY created_at DESC LIMIT 1",
                (f.decision_id,),
            ).fetchone()
            previous = feedback_from_row(row) if row else None
            if previous is not None and same_feedback(previous, f):
                return FeedbackWrite("unchanged", previous)
            conn.execute(
                "INSERT OR IGNORE INTO feedback_sources (decision_id, source) VALUES (?, ?)",
                (f.decision_id, f.source),
            )
            conn.execute("DELETE FROM feedback WHERE decision_id=?", (f.decision_id,))
            conn.execute(
                f"INSERT INTO feedback ({FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (f.decision_id, f.source, f.tenant, f.score, f.success, f.comment, f.created_at),
            )
            return FeedbackWrite("created" if previous is None else "replaced", previous)

        return await self.db.transaction("add_feedback", work)

    async def sweep(self, before: float, limit: int) -> int:
        def work(conn: sqlite3.Connection) -> int:
            ids = [
                (i,)
                for (i,) in conn.execute(
                    "SELECT decision_id FROM decisions WHERE created_at < ? "
                    "ORDER BY created_at LIMIT ?",
                    (before, limit),
                )
            ]
            conn.executemany("DELETE FROM feedback_sources WHERE decision_id=?", ids)
            conn.executemany("DELETE FROM feedback WHERE decision_id=?", ids)
            conn.executemany("DELETE FROM decisions WHERE decision_id=?", ids)
            return len(ids)

        return await self.db.transaction("sweep", work)

    async def recent(self, tenant: str | None, limit: int) -> list[DecisionRecord]:
        def work(conn: sqlite3.Connection) -> list[DecisionRecord]:
            where, params = "", list[object]([limit])
            if tenant is not None:
                where, params = "WHERE tenant=? ", [tenant, limit]
            rows = conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM decisions {where}ORDER BY created_at DESC LIMIT ?",
                params,
            ).fetchall()
            return [decision_from_row(row) for row in rows]

        return await self.db.run("recent", work)

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
                # One feedback per decision (logs written before that rule keep several:
                # the latest is the one that counts).
                feedback = conn.execute(
                    f"SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE decision_id=? "
                    "ORDER BY created_at DESC LIMIT 1",
                    (row[0],),
                ).fetchall()
                rows.append(
                    ExportRow(decision_from_row(row), tuple(map(feedback_from_row, feedback)))
                )
            return rows

        for row in await self.db.run("export", work):
            yield row


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a decision log written by an older version up to the current columns (SQLite
    has no ``ADD COLUMN IF NOT EXISTS``)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
    for name, definition in ADDED_DECISION_COLUMNS:
        if name not in present:
            try:
                conn.execute(f"ALTER TABLE decisions ADD COLUMN {name} {definition}")
            except sqlite3.OperationalError as error:
                # Another process sharing the file added it first.
                if "duplicate column" not in str(error):
                    raise


def _release(
    conn: sqlite3.Connection, tenant: str, buckets: Sequence[tuple[str, str]], amount: int
) -> None:
    for window, label in buckets:
        conn.execute(
            "UPDATE budget_counters SET reserved = max(reserved - ?, 0) "
            "WHERE tenant=? AND win=? AND label=?",
            (amount, tenant, window, label),
        )
