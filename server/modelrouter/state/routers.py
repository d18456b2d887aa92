"""Router versions in the decision log's database, shared by every replica on it.

Two tables beside the decisions: ``router_versions`` (one row per artefact, keyed by its
content hash, with the gate's verdict) and ``router_pointer`` (one row: the serving
version, the history ``rollback`` walks back, the A/B candidate and its share). Promote,
rollback and A/B changes are one transaction each on the pointer row, so two operators (or
a retrain and an operator) cannot interleave. The memory backend keeps them in the
process, for tests and single-process servers; the CLI cannot reach it.

:meth:`RouterStore.arms` reads the decision log itself: decisions, mean cost and feedback
per router version, the A/B report.
"""

from __future__ import annotations

import abc
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..config import Config
from ..errors import ConfigError, StorageUnavailable
from ..learning.registry import RouterPointer, RouterVersion
from .interfaces import DecisionLog

__all__ = [
    "ArmReport",
    "RouterStore",
    "RouterStoreError",
    "open_router_store",
]


class RouterStoreError(ValueError):
    """An operation the pointer refuses: unknown version, nothing to roll back to."""


@dataclass(frozen=True, slots=True)
class ArmReport:
    """What the decision log says about the decisions one router version made."""

    version: str
    decisions: int
    #: Mean actual cost (estimated when the call has none, as for Route), USD.
    mean_cost_usd: float
    #: Decisions with feedback, and the mean score (0 for a failure, as in the export).
    feedback: int
    mean_score: float | None


def promoted(pointer: RouterPointer, version: str, now: float) -> RouterPointer:
    """``version`` serves; the one it replaces goes on the history. A candidate that is
    promoted stops being a candidate."""
    if version == pointer.serving:
        return pointer
    history = (*pointer.history, pointer.serving) if pointer.serving else pointer.history
    candidate, share = pointer.candidate, pointer.share
    if candidate == version:
        candidate, share = "", 0.0
    return RouterPointer(version, history, candidate, share, now)


def rolled_back(pointer: RouterPointer, now: float) -> RouterPointer:
    """The previous version serves again (the current one is dropped, not re-stacked)."""
    if not pointer.history:
        raise RouterStoreError(
            "nothing to roll back to: no version served before "
            + (pointer.serving or "(none serving)")
        )
    return replace(
        pointer, serving=pointer.history[-1], history=pointer.history[:-1], updated_at=now
    )


class RouterStore(abc.ABC):
    """Router versions and the pointer. See the module docstring."""

    async def open(self) -> None:  # noqa: B027 - optional: memory has nothing to open
        """Connect and create the tables when missing."""

    async def aclose(self) -> None:  # noqa: B027 - optional, like open
        """Release connections."""

    @abc.abstractmethod
    async def put(self, router: RouterVersion) -> None:
        """Store ``router`` (an existing version keeps its artefact and creation time; its
        status, notes and metrics are replaced)."""

    @abc.abstractmethod
    async def get(self, version: str) -> RouterVersion | None:
        """The version with its artefact, or ``None``."""

    @abc.abstractmethod
    async def versions(self) -> list[RouterVersion]:
        """Every version, newest first, without artefacts."""

    @abc.abstractmethod
    async def pointer(self) -> RouterPointer:
        """What replicas serve now."""

    @abc.abstractmethod
    async def _update_pointer(self, change: Any) -> RouterPointer:
        """Apply ``change(pointer, known_versions) -> pointer`` atomically; returns it."""

    @abc.abstractmethod
    async def arms(self) -> list[ArmReport]:
        """Decisions, cost and feedback per router version (versions that decided only)."""

    @abc.abstractmethod
    async def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        """Take or renew the retrain lease for ``ttl_s`` seconds: ``True`` when ``holder``
        has it now (it was free, lapsed, or already ``holder``'s), else ``False``."""

    async def promote(self, version: str) -> RouterPointer:
        """Serve ``version`` (it must be stored); the one it replaces can be rolled back to."""

        def change(pointer: RouterPointer, known: Sequence[str]) -> RouterPointer:
            _check_known(version, known)
            return promoted(pointer, version, time.time())

        return await self._update_pointer(change)

    async def rollback(self) -> RouterPointer:
        """Serve the version served before the current one."""
        return await self._update_pointer(lambda p, known: rolled_back(p, time.time()))

    async def set_candidate(self, version: str, share: float) -> RouterPointer:
        """Send ``share`` (0..1) of requests to ``version``; ``""`` or share 0 ends the A/B."""
        if not 0.0 <= share <= 1.0:
            raise RouterStoreError(f"share: expected a fraction in [0, 1], got {share}")

        def change(pointer: RouterPointer, known: Sequence[str]) -> RouterPointer:
            if version:
                _check_known(version, known)
            if not version or share == 0.0:
                return replace(pointer, candidate="", share=0.0, updated_at=time.time())
            return replace(pointer, candidate=version, share=share, updated_at=time.time())

        return await self._update_pointer(change)


def _check_known(version: str, known: Sequence[str]) -> None:
    if version not in known:
        listed = ", ".join(known) or "none stored yet"
        raise RouterStoreError(f"unknown router version {version!r}; stored: {listed}")


class MemoryRouterStore(RouterStore):
    """In this process only (beside the memory decision log, whose decisions it reports)."""

    def __init__(self, decisions: DecisionLog | None = None) -> None:
        self._versions: dict[str, RouterVersion] = {}
        self._pointer = RouterPointer()
        self._decisions = decisions
        self._lease = ("", 0.0)

    async def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        now = time.time()
        if self._lease[0] in ("", holder) or self._lease[1] <= now:
            self._lease = (holder, now + ttl_s)
            return True
        return False

    async def put(self, router: RouterVersion) -> None:
        old = self._versions.get(router.version)
        if old is not None:
            router = replace(router, artifact=old.artifact, created_at=old.created_at)
        self._versions[router.version] = router

    async def get(self, version: str) -> RouterVersion | None:
        return self._versions.get(version)

    async def versions(self) -> list[RouterVersion]:
        return sorted(
            (replace(v, artifact=b"") for v in self._versions.values()),
            key=lambda v: v.created_at,
            reverse=True,
        )

    async def pointer(self) -> RouterPointer:
        return self._pointer

    async def _update_pointer(self, change: Any) -> RouterPointer:
        self._pointer = change(self._pointer, list(self._versions))
        return self._pointer

    async def arms(self) -> list[ArmReport]:
        if self._decisions is None:
            return []
        rows: dict[str, list[float]] = {}
        scores: dict[str, list[float]] = {}
        for d in await self._decisions.recent(None, 10_000_000):
            if d.router_version:
                cost = d.actual_cost_usd if d.actual_cost_usd is not None else d.estimated_cost_usd
                rows.setdefault(d.router_version, []).append(cost)
        async for row in self._decisions.export():
            version = row.decision.router_version
            if version and row.feedback:
                f = row.feedback[-1]
                scores.setdefault(version, []).append(f.score if f.success else 0.0)
        return [
            ArmReport(
                v,
                len(costs),
                sum(costs) / len(costs),
                len(scores.get(v, [])),
                sum(scores[v]) / len(scores[v]) if scores.get(v) else None,
            )
            for v, costs in sorted(rows.items())
        ]


# --- SQL backends: one statement set, two placeholder styles --------------------------

_TABLES = """
CREATE TABLE IF NOT EXISTS {s}router_versions (
    version TEXT PRIMARY KEY, created_at {real} NOT NULL, artifact {blob} NOT NULL,
    status TEXT NOT NULL, notes TEXT NOT NULL, metrics TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}router_pointer (
    id INTEGER PRIMARY KEY CHECK (id = 1), serving TEXT NOT NULL, history TEXT NOT NULL,
    candidate TEXT NOT NULL, share {real} NOT NULL, updated_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS {s}router_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, expires_at {real} NOT NULL);
"""

_PUT = (
    "INSERT INTO {s}router_versions (version, created_at, artifact, status, notes, metrics) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (version) DO UPDATE SET "
    "status = excluded.status, notes = excluded.notes, metrics = excluded.metrics"
)
_POINTER = "SELECT serving, history, candidate, share, updated_at FROM {s}router_pointer"
_WRITE_POINTER = (
    "INSERT INTO {s}router_pointer (id, serving, history, candidate, share, updated_at) "
    "VALUES (1, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO UPDATE SET "
    "serving = excluded.serving, history = excluded.history, candidate = excluded.candidate, "
    "share = excluded.share, updated_at = excluded.updated_at"
)
_VERSIONS = (
    "SELECT version, created_at, status, notes, metrics FROM {s}router_versions "
    "ORDER BY created_at DESC"
)
# Feedback: a failure scores 0, as in export-feedback; decisions without feedback add
# NULL, which avg() and count() skip.
_ARMS = (
    "SELECT d.router_version, count(*), avg(coalesce(d.actual_cost_usd, d.estimated_cost_usd)), "
    "count(f.decision_id), avg(CASE WHEN f.decision_id IS NULL THEN NULL "
    "WHEN f.success THEN f.score ELSE 0 END) "
    "FROM {s}decisions d LEFT JOIN {s}feedback f ON f.decision_id = d.decision_id "
    "WHERE d.router_version <> '' GROUP BY d.router_version ORDER BY d.router_version"
)


# Taken when free, lapsed or already the caller's; the WHERE makes it one atomic statement.
_LEASE = (
    "INSERT INTO {s}router_lease (id, holder, expires_at) VALUES (1, {p}, {p}) "
    "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE {s}router_lease.holder = excluded.holder OR {s}router_lease.expires_at <= {p}"
)
_LEASE_HOLDER = "SELECT holder FROM {s}router_lease"


def _version_row(router: RouterVersion) -> tuple[Any, ...]:
    return (
        router.version,
        router.created_at,
        router.artifact,
        router.status,
        router.notes,
        json.dumps(dict(router.metrics)),
    )


def _listed(row: Sequence[Any]) -> RouterVersion:
    return RouterVersion(row[0], float(row[1]), row[2], row[3], json.loads(row[4]))


def _pointer(row: Sequence[Any] | None) -> RouterPointer:
    if row is None:
        return RouterPointer()
    return RouterPointer(row[0], tuple(json.loads(row[1])), row[2], float(row[3]), float(row[4]))


def _pointer_row(p: RouterPointer) -> tuple[Any, ...]:
    return (p.serving, json.dumps(list(p.history)), p.candidate, p.share, p.updated_at)


def _arm(row: Sequence[Any]) -> ArmReport:
    score = None if row[4] is None else float(row[4])
    return ArmReport(row[0], int(row[1]), float(row[2] or 0.0), int(row[3]), score)


class SqliteRouterStore(RouterStore):
    def __init__(self, path: str) -> None:
        from .sqlite import SqliteDatabase

        self.db = SqliteDatabase(path)

    def _sql(self, template: str) -> str:
        return template.format(s="", p="?", real="REAL", blob="BLOB")

    async def open(self) -> None:
        await self.db.open()
        try:
            await self.db.run("router_tables", lambda c: c.executescript(self._sql(_TABLES)))
        except sqlite3.Error as error:
            raise StorageUnavailable(f"cannot create the router tables: {error}") from error

    async def aclose(self) -> None:
        await self.db.aclose()

    async def put(self, router: RouterVersion) -> None:
        await self.db.run("router_put", lambda c: c.execute(self._sql(_PUT), _version_row(router)))

    async def get(self, version: str) -> RouterVersion | None:
        def work(conn: sqlite3.Connection) -> RouterVersion | None:
            row = conn.execute(
                "SELECT version, created_at, status, notes, metrics, artifact "
                "FROM router_versions WHERE version=?",
                (version,),
            ).fetchone()
            return None if row is None else replace(_listed(row), artifact=bytes(row[5]))

        return await self.db.run("router_get", work)

    async def versions(self) -> list[RouterVersion]:
        def work(conn: sqlite3.Connection) -> list[RouterVersion]:
            return [_listed(r) for r in conn.execute(self._sql(_VERSIONS))]

        return await self.db.run("router_versions", work)

    async def pointer(self) -> RouterPointer:
        return await self.db.run(
            "router_pointer", lambda c: _pointer(c.execute(self._sql(_POINTER)).fetchone())
        )

    async def _update_pointer(self, change: Any) -> RouterPointer:
        def work(conn: sqlite3.Connection) -> RouterPointer:
            # BEGIN IMMEDIATE (the transaction) already holds the write lock.
            pointer = _pointer(conn.execute(self._sql(_POINTER)).fetchone())
            known = [r[0] for r in conn.execute(self._sql(_VERSIONS))]
            updated: RouterPointer = change(pointer, known)
            conn.execute(self._sql(_WRITE_POINTER), _pointer_row(updated))
            return updated

        return await self.db.transaction("router_update_pointer", work)

    async def arms(self) -> list[ArmReport]:
        return await self.db.run(
            "router_arms", lambda c: [_arm(r) for r in c.execute(self._sql(_ARMS))]
        )

    async def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            now = time.time()
            conn.execute(self._sql(_LEASE), (holder, now + ttl_s, now))
            row = conn.execute(self._sql(_LEASE_HOLDER)).fetchone()
            return bool(row and row[0] == holder)

        return await self.db.transaction("router_lease", work)


class PostgresRouterStore(RouterStore):
    def __init__(self, url: str, schema: str) -> None:
        from .postgres import PostgresDatabase

        self.db = PostgresDatabase(url, schema, size=2)
        self.schema = schema

    def _sql(self, template: str) -> str:
        return template.format(s=f"{self.schema}.", p="%s", real="DOUBLE PRECISION", blob="BYTEA")

    async def open(self) -> None:
        await self.db.open()  # creates the schema (and the decision tables) if missing
        await self.db.run("router_tables", lambda c: c.execute(self._sql(_TABLES)))

    async def aclose(self) -> None:
        await self.db.aclose()

    async def _all(self, operation: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async def work(conn: Any) -> list[Any]:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

        return await self.db.run(operation, work)

    async def put(self, router: RouterVersion) -> None:
        await self.db.run("router_put", lambda c: c.execute(self._sql(_PUT), _version_row(router)))

    async def get(self, version: str) -> RouterVersion | None:
        rows = await self._all(
            "router_get",
            "SELECT version, created_at, status, notes, metrics, artifact "
            f"FROM {self.schema}.router_versions WHERE version=%s",
            (version,),
        )
        return replace(_listed(rows[0]), artifact=bytes(rows[0][5])) if rows else None

    async def versions(self) -> list[RouterVersion]:
        return [_listed(r) for r in await self._all("router_versions", self._sql(_VERSIONS))]

    async def pointer(self) -> RouterPointer:
        rows = await self._all("router_pointer", self._sql(_POINTER))
        return _pointer(rows[0] if rows else None)

    async def _update_pointer(self, change: Any) -> RouterPointer:
        async def work(conn: Any) -> RouterPointer:
            # The pointer row may not exist yet: lock on a transaction-scoped advisory lock
            # instead of the row, so the first promote of two replicas serialises too.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('modelrouter-routers'))")
            cursor = await conn.execute(self._sql(_POINTER))
            pointer = _pointer(await cursor.fetchone())
            cursor = await conn.execute(self._sql(_VERSIONS))
            known = [r[0] for r in await cursor.fetchall()]
            updated: RouterPointer = change(pointer, known)
            await conn.execute(self._sql(_WRITE_POINTER), _pointer_row(updated))
            return updated

        return await self.db.transaction("router_update_pointer", work)

    async def arms(self) -> list[ArmReport]:
        return [_arm(r) for r in await self._all("router_arms", self._sql(_ARMS))]

    async def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        async def work(conn: Any) -> bool:
            now = time.time()
            await conn.execute(self._sql(_LEASE), (holder, now + ttl_s, now))
            cursor = await conn.execute(self._sql(_LEASE_HOLDER))
            row = await cursor.fetchone()
            return bool(row and row[0] == holder)

        return await self.db.transaction("router_lease", work)


async def open_router_store(config: Config, decisions: DecisionLog | None = None) -> RouterStore:
    """The store on the decision log's backend (``storage.log``), opened. ``decisions`` is
    the memory log the memory store reports on. An unreachable store is a ``ConfigError``."""
    storage = config.state.storage
    store: RouterStore
    if storage.log == "sqlite":
        store = SqliteRouterStore(storage.sqlite_path)
    elif storage.log == "postgres":
        store = PostgresRouterStore(storage.postgres_url, storage.postgres_schema)
    else:
        store = MemoryRouterStore(decisions)
    try:
        await store.open()
    except StorageUnavailable as error:
        raise ConfigError(f"{config.source}: storage.log = {storage.log!r}: {error}") from None
    return store
