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
    outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_tenant ON {s}.decisions (tenant, created_at);
CREATE TABLE IF NOT EXISTS {s}.feedback (
    decision_id TEXT NOT NULL REFERENCES {s}.decisions (decision_id), source TEXT NOT NULL,
    tenant TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, success BOOLEAN NOT NULL,
    comment TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (decision_id, source));
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
            self._idle.put_nowait(conn)
            for _ in range(self.size - 1):
                self._idle.put_nowait(await self._connect())
        except _RETRY_ON as error:
            await self.aclose()
            raise StorageUnavailable(
                f"cannot reach PostgreSQL at {_redact(self.url)}: {error}"
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


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


class PostgresHotState(OwnsDatabase, HotState):
    name = "postgres"

    def __init__(self, url: str, schema: str = "modelrouter") -> None:
        self.db = PostgresDatabase(url, schema)
        self.s = schema

    async def reserve(self, tenant: str, amount: int, buckets: Sequence[Bucket]) -> Bucket | None:
        ordered = sorted(buckets, key=lambda b: (b.window, b.label))

        async def work(conn: psycopg.AsyncConnection[Any]) -> Bucket | None:
            for b in ordered:
                await conn.execute(
                    f"INSERT INTO {self.s}.budget_counters (tenant, win, label) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (tenant, b.window, b.label),
                )
            totals = {}
            for b in ordered:  # lock in a fixed order: no deadlocks between replicas
                cur = await conn.execute(
                    f"SELECT spent + reserved FROM {self.s}.budget_counters "
                    "WHERE tenant=%s AND win=%s AND label=%s FOR UPDATE",
                    (tenant, b.window, b.label),
                )
                row = await cur.fetchone()
                totals[b] = row[0] if row else 0
            for b in buckets:
                if totals[b] + amount > b.limit:
                    return b
            for b in ordered:
                await conn.execute(
                    f"UPDATE {self.s}.budget_counters SET reserved = reserved + %s "
                    "WHERE tenant=%s AND win=%s AND label=%s",
                    (amount, tenant, b.window, b.label),
                )
            return None

        return await self.db.transaction("reserve", work)

    async def settle(
        self, tenant: str, buckets: Sequence[Bucket], reserved: int, actual: int
    ) -> None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            for b in sorted(buckets, key=lambda b: (b.window, b.label)):
                await conn.execute(
                    f"UPDATE {self.s}.budget_counters SET spent = spent + %s, "
                    "reserved = GREATEST(reserved - %s, 0) WHERE tenant=%s AND win=%s AND label=%s",
                    (actual, reserved, tenant, b.window, b.label),
                )

        await self.db.transaction("settle", work)

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

    async def record_reward(self, key: str, model: str, reward: float) -> None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                f"INSERT INTO {self.s}.arm_stats (key, model, count, reward_sum) "
                "VALUES (%s, %s, 1, %s) "
                "ON CONFLICT (key, model) DO UPDATE SET count = arm_stats.count + 1, "
                "reward_sum = arm_stats.reward_sum + excluded.reward_sum",
                (key, model, reward),
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

    async def get(self, decision_id: str) -> DecisionRecord | None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> DecisionRecord | None:
            cur = await conn.execute(
                f"SELECT {DECISION_COLUMNS} FROM {self.s}.decisions WHERE decision_id=%s",
                (decision_id,),
            )
            row = await cur.fetchone()
            return decision_from_row(row) if row else None

        return await self.db.run("get", work)

    async def add_feedback(self, f: FeedbackRecord) -> bool:
        async def work(conn: psycopg.AsyncConnection[Any]) -> bool:
            cur = await conn.execute(
                f"INSERT INTO {self.s}.feedback "
                "(decision_id, source, tenant, score, success, comment, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (decision_id, source) DO NOTHING",
                (f.decision_id, f.source, f.tenant, f.score, f.success, f.comment, f.created_at),
            )
            return cur.rowcount == 1

        return await self.db.run("add_feedback", work)

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
                fcur = await conn.execute(
                    "SELECT decision_id, source, tenant, score, success, comment, created_at "
                    f"FROM {self.s}.feedback WHERE decision_id=%s ORDER BY created_at",
                    (row[0],),
                )
                feedback = tuple(map(feedback_from_row, await fcur.fetchall()))
                rows.append(ExportRow(decision_from_row(row), feedback))
            return rows

        for row in await self.db.run("export", work):
            yield row
