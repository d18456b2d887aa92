"""The shadow log: what shadow evaluation found, durable beside the decision log.

One :class:`ShadowResult` per shadowed decision: the model that answered, the reference
model that answered again, the judge's score of each answer, the P(adequate) the router
predicted for the answering model, and what the shadow calls cost. ``modelrouter
export-feedback`` and ``modelrouter retrain`` read them back as labels (the prompt is kept
only when ``[storage] log_prompts`` is on, like the decision log's). Each backend keeps its
own table in the decision log's database, created when missing.
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

from .interfaces import OwnsDatabase

__all__ = [
    "MemoryShadowLog",
    "PostgresShadowLog",
    "ShadowLog",
    "ShadowResult",
    "SqliteShadowLog",
]


@dataclass(frozen=True, slots=True)
class ShadowResult:
    decision_id: str
    tenant: str
    #: Seconds since the epoch (UTC) when the judging finished.
    created_at: float
    #: The model that answered the caller.
    model: str
    reference_model: str
    complexity: str
    task_type: str
    #: The judge's scores in [0, 1] of the answer the caller got and of the reference's.
    score: float
    reference_score: float
    adequate: bool
    #: What the router predicted, P(adequate) of ``model``; ``None`` when the classifier
    #: gave no calibrated prediction.
    p_adequate: float | None
    #: What the reference answer and the judging cost, in USD (the tenant's shadow line).
    reference_cost_usd: float
    judge_cost_usd: float
    #: The version of the router that decided ("" when not a versioned router).
    router_version: str = ""
    #: The last user turn, only with ``[storage] log_prompts``.
    prompt: str | None = None


COLUMNS = tuple(f.name for f in fields(ShadowResult))
_TYPES = {
    "created_at": "DOUBLE PRECISION NOT NULL",
    "score": "DOUBLE PRECISION NOT NULL",
    "reference_score": "DOUBLE PRECISION NOT NULL",
    "adequate": "BOOLEAN NOT NULL",
    "p_adequate": "DOUBLE PRECISION",
    "reference_cost_usd": "DOUBLE PRECISION NOT NULL",
    "judge_cost_usd": "DOUBLE PRECISION NOT NULL",
    "prompt": "TEXT",
}
_TABLE_COLUMNS = ", ".join(f"{c} {_TYPES.get(c, 'TEXT NOT NULL')}" for c in COLUMNS)


def _from_row(row: Sequence[Any]) -> ShadowResult:
    values = dict(zip(COLUMNS, row, strict=True))
    values["adequate"] = bool(values["adequate"])
    return ShadowResult(**values)


class ShadowLog(abc.ABC):
    name: str = ""

    async def open(self) -> None:  # noqa: B027 - optional: memory has nothing to open
        pass

    async def aclose(self) -> None:  # noqa: B027
        pass

    @abc.abstractmethod
    async def record(self, result: ShadowResult) -> None:
        """Keep ``result`` (one per decision: a second one for the same decision replaces it)."""

    @abc.abstractmethod
    async def results(self, tenant: str | None = None) -> list[ShadowResult]:
        """Every kept result (of ``tenant``), oldest first."""

    @abc.abstractmethod
    async def sweep(self, before: float) -> int:
        """Forget results created before ``before``; how many were forgotten."""


class MemoryShadowLog(ShadowLog):
    name = "memory"

    def __init__(self) -> None:
        self._results: dict[str, ShadowResult] = {}

    async def record(self, result: ShadowResult) -> None:
        self._results.pop(result.decision_id, None)
        self._results[result.decision_id] = result

    async def results(self, tenant: str | None = None) -> list[ShadowResult]:
        return [r for r in self._results.values() if tenant is None or r.tenant == tenant]

    async def sweep(self, before: float) -> int:
        old = [k for k, r in self._results.items() if r.created_at < before]
        for key in old:
            del self._results[key]
        return len(old)


def _insert(table: str, mark: str) -> str:
    return f"INTO {table} ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})"


def _select(table: str) -> str:
    return f"SELECT {', '.join(COLUMNS)} FROM {table}"


class SqliteShadowLog(OwnsDatabase, ShadowLog):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        from .sqlite import SqliteDatabase

        self.db = SqliteDatabase(path)

    async def open(self) -> None:
        await self.db.open()
        await self.db.run(
            "shadow_schema",
            lambda conn: conn.executescript(
                f"CREATE TABLE IF NOT EXISTS shadow_results ({_TABLE_COLUMNS}, "
                "PRIMARY KEY (decision_id));"
                "CREATE INDEX IF NOT EXISTS shadow_results_created "
                "ON shadow_results (created_at);"
            ),
        )

    async def record(self, result: ShadowResult) -> None:
        sql = f"INSERT OR REPLACE {_insert('shadow_results', '?')}"
        await self.db.run("record_shadow", lambda conn: conn.execute(sql, astuple(result)))

    async def results(self, tenant: str | None = None) -> list[ShadowResult]:
        def work(conn: sqlite3.Connection) -> list[ShadowResult]:
            select = _select("shadow_results")
            if tenant is None:
                rows = conn.execute(f"{select} ORDER BY created_at").fetchall()
            else:
                rows = conn.execute(
                    f"{select} WHERE tenant=? ORDER BY created_at", (tenant,)
                ).fetchall()
            return [_from_row(row) for row in rows]

        return await self.db.run("shadow_results", work)

    async def sweep(self, before: float) -> int:
        return await self.db.run(
            "sweep_shadow",
            lambda conn: (
                conn.execute("DELETE FROM shadow_results WHERE created_at < ?", (before,)).rowcount
            ),
        )


class PostgresShadowLog(OwnsDatabase, ShadowLog):
    name = "postgres"

    def __init__(self, url: str, schema: str = "modelrouter") -> None:
        from .postgres import PostgresDatabase

        self.db = PostgresDatabase(url, schema, size=2)
        self.schema = schema
        self.table = f"{schema}.shadow_results"

    async def open(self) -> None:
        await self.db.open()

        async def work(conn: Any) -> None:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ({_TABLE_COLUMNS}, "
                "PRIMARY KEY (decision_id))"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS shadow_results_created ON {self.table} (created_at)"
            )

        await self.db.transaction("shadow_schema", work)

    async def record(self, result: ShadowResult) -> None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "decision_id")
        sql = (
            f"INSERT {_insert(self.table, '%s')} ON CONFLICT (decision_id) DO UPDATE SET {updates}"
        )

        async def work(conn: Any) -> None:
            await conn.execute(sql, astuple(result))

        await self.db.run("record_shadow", work)

    async def results(self, tenant: str | None = None) -> list[ShadowResult]:
        select = _select(self.table)

        async def work(conn: Any) -> list[ShadowResult]:
            if tenant is None:
                cursor = await conn.execute(f"{select} ORDER BY created_at")
            else:
                cursor = await conn.execute(
                    f"{select} WHERE tenant = %s ORDER BY created_at", (tenant,)
                )
            return [_from_row(row) for row in await cursor.fetchall()]

        return await self.db.run("shadow_results", work)

    async def sweep(self, before: float) -> int:
        async def work(conn: Any) -> int:
            cursor = await conn.execute(
                f"DELETE FROM {self.table} WHERE created_at < %s", (before,)
            )
            return int(cursor.rowcount)

        return await self.db.run("sweep_shadow", work)
