"""PostgreSQL backends: the durable decision and feedback log (and, optionally, hot state).

Tables live in their own schema (``storage.postgres_schema``), created on first start
under an advisory lock so replicas starting together do not race. Writes commit before
they return. Reserve locks the tenant's counter rows in a fixed order inside one
transaction, so concurrent replicas serialise on them and never over-commit a budget.
Broken connections are replaced and the call retried (see ``retry.py``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg

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
from .redact import redact_url
from .retry import RetryPolicy
from .rows import (
    DECISION_COLUMNS,
    FEEDBACK_COLUMNS,
    buckets_from_json,
    buckets_to_json,
    decision_from_row,
    decision_row,
    feedback_from_row,
)

T = TypeVar("T")
_RETRY_ON = (psycopg.OperationalError, psycopg.InterfaceError)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {s}.budget_counters (
    tenant TEXT NOT NULL, win TEXT NOT NULL, label TEXT NOT NULL,
    spent BIGINT NOT NULL DEFAULT 0, reserved BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, win, label));
CREATE TABLE IF NOT EXISTS {s}.arm_stats (
    key TEXT NOT NULL, model TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0, reward_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (key, model));
CREATE TABLE IF NOT EXISTS {s}.decisions (
    decision_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL, complexity TEXT NOT NULL, task_type TEXT NOT NULL,
    classifier TEXT NOT NULL, candidates JSONB NOT NULL, chosen_model TEXT NOT NULL,
    estimated_cost_usd DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, explored BOOLEAN NOT NULL,
    prompt TEXT, actual_cost_usd DOUBLE PRECISION, latency_ms DOUBLE PRECISION,
    outcome TEXT NOT NULL, router_version TEXT NOT NULL DEFAULT '');
ALTER TABLE {s}.decisions ADD COLUMN IF NOT EXISTS router_version TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS decisions_tenant ON {s}.decisions (tenant, created_at);
CREATE INDEX IF NOT EXISTS decisions_created ON {s}.decisions (created_at);
CREATE TABLE IF NOT EXISTS {s}.reservations (
    tenant TEXT NOT NULL, attempt_id TEXT NOT NULL, amount BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, buckets TEXT NOT NULL, state TEXT NOT NULL,
    closed_at DOUBLE PRECISION, actual BIGINT, estimated BOOLEAN,
    PRIMARY KEY (tenant, attempt_id));
CREATE INDEX IF NOT EXISTS reservations_held_tenant
    ON {s}.reservations (tenant) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS reservations_held_age
    ON {s}.reservations (created_at) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS reservations_closed
    ON {s}.reservations (closed_at) WHERE state <> 'held';
CREATE TABLE IF NOT EXISTS {s}.rate_counters (
    key TEXT PRIMARY KEY, win BIGINT NOT NULL, count BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.sessions (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.feedback_sources (
    decision_id TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (decision_id, source));
CREATE TABLE IF NOT EXISTS {s}.feedback (
    decision_id TEXT NOT NULL REFERENCES {s}.decisions (decision_id), source TEXT NOT NULL,
    tenant TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, success BOOLEAN NOT NULL,
    comment TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (decision_id, source));
"""

# Reserve and settle are one statement each (one round trip, its own transaction): they
# lock the tenant's counter rows in the order given (the caller sorts them), so every
# reserve and settle of a tenant serialises on them and replicas never deadlock.
# mr_reserve returns 0 (reserved, or the attempt was already known), -1 (in-flight cap)
# or the 1-based index of the first bucket that cannot fit.
_FUNCTIONS = """
CREATE OR REPLACE FUNCTION {s}.mr_reserve(
    p_tenant TEXT, p_attempt TEXT, p_amount BIGINT, p_now DOUBLE PRECISION, p_cap INT,
    p_wins TEXT[], p_labels TEXT[], p_limits BIGINT[], p_buckets TEXT
) RETURNS INT LANGUAGE plpgsql AS $$
DECLARE
    totals BIGINT[] := '{{}}';
    total BIGINT;
    held BIGINT;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_wins, 1), 0) LOOP
        INSERT INTO {s}.budget_counters AS c (tenant, win, label)
        VALUES (p_tenant, p_wins[i], p_labels[i])
        ON CONFLICT (tenant, win, label) DO UPDATE SET spent = c.spent
        RETURNING c.spent + c.reserved INTO total;
        totals := totals || total;
    END LOOP;
    IF EXISTS (SELECT 1 FROM {s}.reservations WHERE tenant = p_tenant AND attempt_id = p_attempt)
    THEN
        RETURN 0;
    END IF;
    IF p_cap > 0 THEN
        SELECT count(*) INTO held FROM {s}.reservations
        WHERE tenant = p_tenant AND state = 'held';
        IF held >= p_cap THEN
            RETURN -1;
        END IF;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_wins, 1), 0) LOOP
        IF totals[i] + p_amount > p_limits[i] THEN
            RETURN i;
        END IF;
    END LOOP;
    UPDATE {s}.budget_counters SET reserved = reserved + p_amount
    WHERE tenant = p_tenant AND (win, label) IN (SELECT * FROM unnest(p_wins, p_labels));
    INSERT INTO {s}.reservations (tenant, attempt_id, amount, created_at, buckets, state)
    VALUES (p_tenant, p_attempt, p_amount, p_now, p_buckets, 'held');
    RETURN 0;
END $$;

CREATE OR REPLACE FUNCTION {s}.mr_settle(
    p_tenant TEXT, p_attempt TEXT, p_actual BIGINT, p_estimated BOOLEAN,
    p_now DOUBLE PRECISION, p_wins TEXT[], p_labels TEXT[]
) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
    pair JSON;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_wins, 1), 0) LOOP
        INSERT INTO {s}.budget_counters AS c (tenant, win, label)
        VALUES (p_tenant, p_wins[i], p_labels[i])
        ON CONFLICT (tenant, win, label) DO UPDATE SET spent = c.spent;
    END LOOP;
    SELECT state, amount, buckets INTO r FROM {s}.reservations
    WHERE tenant = p_tenant AND attempt_id = p_attempt FOR UPDATE;
    IF FOUND AND r.state = 'settled' THEN
        RETURN FALSE;
    END IF;
    IF FOUND AND r.state = 'held' THEN
        FOR pair IN SELECT * FROM json_array_elements(r.buckets::json) LOOP
            UPDATE {s}.budget_counters SET reserved = GREATEST(reserved - r.amount, 0)
            WHERE tenant = p_tenant AND win = pair->>0 AND label = pair->>1;
        END LOOP;
    END IF;
    UPDATE {s}.budget_counters SET spent = spent + p_actual
    WHERE tenant = p_tenant AND (win, label) IN (SELECT * FROM unnest(p_wins, p_labels));
    INSERT INTO {s}.reservations AS x (tenant, attempt_id, amount, created_at, buckets, state,
                                       closed_at, actual, estimated)
    VALUES (p_tenant, p_attempt, 0, p_now, '[]', 'settled', p_now, p_actual, p_estimated)
    ON CONFLICT (tenant, attempt_id) DO UPDATE SET state = 'settled',
        closed_at = excluded.closed_at, actual = excluded.actual, estimated = excluded.estimated;
    RETURN TRUE;
END $$;
"""


class PostgresDatabase:
    """A few autocommit connections handed out one caller at a time."""

    def __init__(self, url: str, schema: str, size: int = 4) -> None:
        self.url = url
        self.schema = schema
        self.size = size
        self.retry = RetryPolicy()
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[Any]] = []

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
        self._all.append(conn)
        return conn

    async def open(self) -> None:
        if not _IDENTIFIER.match(self.schema):
            raise StorageUnavailable(
                f"storage.postgres_schema {self.schema!r} is not a plain lower-case identifier"
            )
        try:
            conn = await self._connect()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('modelrouter-schema'))")
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                await conn.execute(_SCHEMA.format(s=self.schema))
                await conn.execute(_FUNCTIONS.format(s=self.schema))
            self._idle.put_nowait(conn)
            for _ in range(self.size - 1):
                self._idle.put_nowait(await self._connect())
        except _RETRY_ON as error:
            await self.aclose()
            raise StorageUnavailable(
                f"cannot reach PostgreSQL at {redact_url(self.url)}: {redact_url(str(error))}"
            ) from error

    async def aclose(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._idle = asyncio.Queue()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._idle.get()
        try:
            if conn.closed:
                self._all.remove(conn)
                conn = await self._connect()
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def run(
        self, operation: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        async def once() -> T:
            async with self.connection() as conn:
                return await work(conn)

        return await self.retry.run("postgres", operation, once, _RETRY_ON)

    async def transaction(
        self, operation: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        async def atomic(conn: psycopg.AsyncConnection[Any]) -> T:
            async with conn.transaction():
                return await work(conn)

        return await self.run(operation, atomic)


class PostgresHotState(OwnsDatabase, HotState):
    name = "postgres"

    def __init__(self, url: str, schema: str = "modelrouter") -> None:
        self.db = PostgresDatabase(url, schema)
        self.s = schema

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
        ordered = sorted(buckets, key=lambda b: (b.window, b.label))

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(
                f"SELECT {self.s}.mr_reserve(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    tenant,
                    attempt_id,
                    amount,
                    now,
                    max_in_flight,
                    [b.window for b in ordered],
                    [b.label for b in ordered],
                    [b.limit for b in ordered],
                    buckets_to_json(ordered),
                ),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        failed = await self.db.run("reserve", work)
        if failed < 0:
            return IN_FLIGHT
        return ordered[failed - 1] if failed else None

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
        ordered = sorted(buckets, key=lambda b: (b.window, b.label))

        async def work(conn: psycopg.AsyncConnection[Any]) -> bool:
            cur = await conn.execute(
                f"SELECT {self.s}.mr_settle(%s, %s, %s, %s, %s, %s, %s)",
                (
                    tenant,
                    attempt_id,
                    actual,
                    estimated,
                    now,
                    [b.window for b in ordered],
                    [b.label for b in ordered],
                ),
            )
            row = await cur.fetchone()
            return bool(row[0]) if row else False

        return await self.db.run("settle", work)

    async def reap(self, cutoff: float, limit: int, now: float) -> int:
        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            # SKIP LOCKED: a reservation being settled right now is left to its settle.
            cur = await conn.execute(
                f"UPDATE {self.s}.reservations r SET state = 'reaped', closed_at = %s "
                f"FROM (SELECT tenant, attempt_id FROM {self.s}.reservations "
                "WHERE state = 'held' AND created_at < %s ORDER BY created_at LIMIT %s "
                "FOR UPDATE SKIP LOCKED) stale "
                "WHERE r.tenant = stale.tenant AND r.attempt_id = stale.attempt_id "
                "RETURNING r.tenant, r.amount, r.buckets",
                (now, cutoff, limit),
            )
            stale = await cur.fetchall()
            release: dict[tuple[str, str, str], int] = {}
            for tenant, amount, buckets in stale:
                for window, label in buckets_from_json(buckets):
                    key = (tenant, window, label)
                    release[key] = release.get(key, 0) + amount
            for (tenant, window, label), amount in sorted(release.items()):
                await conn.execute(
                    f"UPDATE {self.s}.budget_counters SET reserved = GREATEST(reserved - %s, 0) "
                    "WHERE tenant=%s AND win=%s AND label=%s",
                    (amount, tenant, window, label),
                )
            await conn.execute(
                f"DELETE FROM {self.s}.reservations WHERE (tenant, attempt_id) IN "
                f"(SELECT tenant, attempt_id FROM {self.s}.reservations "
                "WHERE state <> 'held' AND closed_at < %s LIMIT %s)",
                (now - TOMBSTONE_TTL_S, limit),
            )
            return len(stale)

        return await self.db.transaction("reap", work)

    async def in_flight(self, tenant: str) -> int:
        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(
                f"SELECT count(*) FROM {self.s}.reservations WHERE tenant=%s AND state='held'",
                (tenant,),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self.db.run("in_flight", work)

    async def hit(self, key: str, window_s: int, now: float) -> int:
        window = int(now // window_s)

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(
                f"INSERT INTO {self.s}.rate_counters AS c (key, win, count) VALUES (%s, %s, 1) "
                "ON CONFLICT (key) DO UPDATE SET "
                "count = CASE WHEN c.win = excluded.win THEN c.count + 1 ELSE 1 END, "
                "win = excluded.win RETURNING c.count",
                (key, window),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 1

        return await self.db.run("hit", work)

    async def session_model(self, key: str, now: float) -> str | None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> str | None:
            cur = await conn.execute(
                f"SELECT model FROM {self.s}.sessions WHERE key=%s AND expires_at > %s",
                (key, now),
            )
            row = await cur.fetchone()
            return str(row[0]) if row else None

        return await self.db.run("session_model", work)

    async def stick_session(self, key: str, model: str, ttl_s: float, now: float) -> None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                f"INSERT INTO {self.s}.sessions (key, model, expires_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET model=excluded.model, "
                "expires_at=excluded.expires_at",
                (key, model, now + ttl_s),
            )
            # Expired sessions go a few at a time (no sweep of their own needed).
            await conn.execute(
                f"DELETE FROM {self.s}.sessions WHERE key IN (SELECT key FROM "
                f"{self.s}.sessions WHERE expires_at <= %s LIMIT 16)",
                (now,),
            )

        await self.db.run("stick_session", work)

    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> list[BucketUsage]:
            result = []
            for b in buckets:
                cur = await conn.execute(
                    f"SELECT spent, reserved FROM {self.s}.budget_counters "
                    "WHERE tenant=%s AND win=%s AND label=%s",
                    (tenant, b.window, b.label),
                )
                row = await cur.fetchone()
                result.append(BucketUsage(*(row or (0, 0))))
            return result

        return await self.db.run("usage", work)

    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> dict[str, ArmStats]:
            cur = await conn.execute(
                f"SELECT model, count, reward_sum FROM {self.s}.arm_stats WHERE key=%s", (key,)
            )
            return {m: ArmStats(n, total) for m, n, total in await cur.fetchall()}

        return await self.db.run("arm_stats", work)

    async def record_reward(
        self, key: str, model: str, reward: float, previous: float | None = None
    ) -> None:
        added, delta = (1, reward) if previous is None else (0, reward - previous)

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            # Additive both ways, so a replacement landing before the observation it
            # replaces (concurrent feedback) still sums right.
            await conn.execute(
                f"INSERT INTO {self.s}.arm_stats (key, model, count, reward_sum) "
                "VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key, model) DO UPDATE SET count = arm_stats.count + excluded.count, "
                "reward_sum = arm_stats.reward_sum + excluded.reward_sum",
                (key, model, added, delta),
            )

        await self.db.run("record_reward", work)


class PostgresDecisionLog(OwnsDatabase, DecisionLog):
    name = "postgres"

    def __init__(self, url: str, schema: str = "modelrouter") -> None:
        self.db = PostgresDatabase(url, schema)
        self.s = schema

    async def record(self, d: DecisionRecord) -> None:
        columns = [c.strip() for c in DECISION_COLUMNS.split(",")]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        placeholders = ", ".join(["%s"] * len(columns))
        await self.db.run(
            "record",
            lambda conn: conn.execute(
                f"INSERT INTO {self.s}.decisions ({DECISION_COLUMNS}) VALUES ({placeholders}) "
                f"ON CONFLICT (decision_id) DO UPDATE SET {updates}",
                decision_row(d),
            ),
        )

    async def record_many(self, decisions: Sequence[DecisionRecord]) -> None:
        columns = [c.strip() for c in DECISION_COLUMNS.split(",")]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        placeholders = ", ".join(["%s"] * len(columns))
        rows = [decision_row(d) for d in decisions]

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.cursor() as cursor:  # one pipelined round trip for the batch
                await cursor.executemany(
                    f"INSERT INTO {self.s}.decisions ({DECISION_COLUMNS}) "
                    f"VALUES ({placeholders}) ON CONFLICT (decision_id) DO UPDATE SET {updates}",
                    rows,
                )

        await self.db.transaction("record_many", work)

    async def get(self, decision_id: str) -> DecisionRecord | None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> DecisionRecord | None:
            cur = await conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM {self.s}.decisions WHERE decision_id=%s",
                (decision_id,),
            )
            row = await cur.fetchone()
            return decision_from_row(row) if row else None

        return await self.db.run("get", work)

    async def add_feedback(self, f: FeedbackRecord, max_sources: int) -> FeedbackWrite:
        async def work(conn: psycopg.AsyncConnection[Any]) -> FeedbackWrite:
            # Feedback on one decision serialises on the decision's row.
            await conn.execute(
                f"SELECT 1 FROM {self.s}.decisions WHERE decision_id=%s FOR UPDATE",
                (f.decision_id,),
            )
            cur = await conn.execute(
                f"SELECT source FROM {self.s}.feedback_sources WHERE decision_id=%s",
                (f.decision_id,),
            )
            sources = {source for (source,) in await cur.fetchall()}
            if f.source not in sources and len(sources) >= max_sources:
                return FeedbackWrite("too_many_sources")
            cur = await conn.execute(
                f"SELECT {FEEDBACK_COLUMNS} FROM {self.s}.feedback WHERE decision_id=%s "
                "ORDER BY created_at DESC LIMIT 1",
                (f.decision_id,),
            )
            row = await cur.fetchone()
            previous = feedback_from_row(row) if row else None
            if previous is not None and same_feedback(previous, f):
                return FeedbackWrite("unchanged", previous)
            await conn.execute(
                f"INSERT INTO {self.s}.feedback_sources (decision_id, source) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (f.decision_id, f.source),
            )
            await conn.execute(
                f"DELETE FROM {self.s}.feedback WHERE decision_id=%s", (f.decision_id,)
            )
            await conn.execute(
                f"INSERT INTO {self.s}.feedback ({FEEDBACK_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (f.decision_id, f.source, f.tenant, f.score, f.success, f.comment, f.created_at),
            )
            return FeedbackWrite("created" if previous is None else "replaced", previous)

        return await self.db.transaction("add_feedback", work)

    async def sweep(self, before: float, limit: int) -> int:
        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(
                f"SELECT decision_id FROM {self.s}.decisions WHERE created_at < %s "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (before, limit),
            )
            ids = [i for (i,) in await cur.fetchall()]
            if ids:
                for table in ("feedback_sources", "feedback", "decisions"):
                    await conn.execute(
                        f"DELETE FROM {self.s}.{table} WHERE decision_id = ANY(%s)", (ids,)
                    )
            return len(ids)

        return await self.db.transaction("sweep", work)

    async def recent(self, tenant: str | None, limit: int) -> list[DecisionRecord]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> list[DecisionRecord]:
            where, params = "", list[object]([limit])
            if tenant is not None:
                where, params = "WHERE tenant=%s ", [tenant, limit]
            cur = await conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM {self.s}.decisions {where}"
                "ORDER BY created_at DESC LIMIT %s",
                params,
            )
            return [decision_from_row(row) for row in await cur.fetchall()]

        return await self.db.run("recent", work)

    async def export(self, tenant: str | None = None) -> AsyncIterator[ExportRow]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> list[ExportRow]:
            where = f"WHERE decision_id IN (SELECT decision_id FROM {self.s}.feedback)"
            params: tuple[str, ...] = ()
            if tenant is not None:
                where += " AND tenant = %s"
                params = (tenant,)
            cur = await conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM {self.s}.decisions {where} ORDER BY created_at",
                params,
            )
            rows = []
            for row in await cur.fetchall():
                # One feedback per decision (logs written before that rule keep several:
                # the latest is the one that counts).
                fcur = await conn.execute(
                    f"SELECT {FEEDBACK_COLUMNS} FROM {self.s}.feedback WHERE decision_id=%s "
                    "ORDER BY created_at DESC LIMIT 1",
                    (row[0],),
                )
                feedback = tuple(map(feedback_from_row, await fcur.fetchall()))
                rows.append(ExportRow(decision_from_row(row), feedback))
            return rows

        for row in await self.db.run("export", work):
            yield row
