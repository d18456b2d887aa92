"""Configurations over each storage backend, isolated per test and cleaned up after.

Redis and PostgreSQL tests skip when the service is unreachable, unless
MODELROUTER_REQUIRE_SERVICES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelrouter.config import Config, parse_config
from modelrouter.state.interfaces import DecisionLog, HotState
from modelrouter.testing import TEST_CONFIG

REDIS_URL = os.environ.get("MODELROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "MODELROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("memory", "sqlite", "redis", "postgres")


def unavailable(service: str, error: Exception) -> None:
    message = f"{service} unreachable: {error}"
    if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (MODELROUTER_REQUIRE_SERVICES=1)")
    pytest.skip(message)


async def require_redis() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as error:
        unavailable("Redis", error)
    finally:
        await client.aclose()


async def require_postgres() -> None:
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(POSTGRES_URL, connect_timeout=2)
        await conn.close()
    except Exception as error:
        unavailable("PostgreSQL", error)


async def drop_redis_prefix(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def drop_postgres_schema(schema: str) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True)
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await conn.close()


def storage_table(backend: str, tmp_path: Path, unique: str) -> str:
    """A ``[storage]`` table putting both hot state and the log on ``backend``.

    Redis holds only hot state, so its log goes to SQLite.
    """
    sqlite = f'sqlite_path = "{tmp_path / "state.db"}"'
    if backend == "memory":
        return '[storage]\nhot = "memory"\nlog = "memory"\n'
    if backend == "sqlite":
        return f'[storage]\nhot = "sqlite"\nlog = "sqlite"\n{sqlite}\n'
    if backend == "redis":
        return (
            f'[storage]\nhot = "redis"\nlog = "sqlite"\n{sqlite}\n'
            f'redis_url = "{REDIS_URL}"\nredis_prefix = "{unique}"\n'
        )
    return (
        f'[storage]\nhot = "postgres"\nlog = "postgres"\npostgres_url = "{POSTGRES_URL}"\n'
        f'postgres_schema = "{unique}"\n'
    )


@pytest.fixture(params=BACKENDS)
async def backend_config(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[str], Config]]:
    """``make(extra_toml) -> Config``: the test catalog on one backend plus ``extra_toml``."""
    backend = request.param
    unique = f"mrtest_{uuid.uuid4().hex[:12]}"
    if backend == "redis":
        await require_redis()
    if backend == "postgres":
        await require_postgres()

    def make(extra: str = "") -> Config:
        text = TEST_CONFIG + "\n" + storage_table(backend, tmp_path, unique) + "\n" + extra
        return parse_config(text, source=f"TEST_CONFIG+{backend}")

    make.backend = backend  # type: ignore[attr-defined]
    make.unique = unique  # type: ignore[attr-defined]
    yield make
    if backend == "redis":
        await drop_redis_prefix(unique)
    if backend == "postgres":
        await drop_postgres_schema(unique)


async def open_stores(backend: str, tmp_path: Path, unique: str) -> tuple[HotState, DecisionLog]:
    """The hot store and decision log of ``backend``, opened (Redis logs to SQLite)."""
    from modelrouter.state.memory import MemoryDecisionLog, MemoryHotState
    from modelrouter.state.sqlite import SqliteDecisionLog, SqliteHotState

    hot: HotState
    log: DecisionLog
    sqlite_path = str(tmp_path / f"{unique}.db")
    if backend == "memory":
        hot, log = MemoryHotState(), MemoryDecisionLog()
    elif backend == "sqlite":
        hot, log = SqliteHotState(sqlite_path), SqliteDecisionLog(sqlite_path)
    elif backend == "redis":
        from modelrouter.state.redis import RedisHotState

        await require_redis()
        hot, log = RedisHotState(REDIS_URL, unique), SqliteDecisionLog(sqlite_path)
    else:
        from modelrouter.state.postgres import PostgresDecisionLog, PostgresHotState

        await require_postgres()
        hot, log = PostgresHotState(POSTGRES_URL, unique), PostgresDecisionLog(POSTGRES_URL, unique)
    await hot.open()
    await log.open()
    return hot, log


@dataclass
class Stores:
    backend: str
    hot: HotState
    decisions: DecisionLog
    #: Prefix (Redis) or schema (PostgreSQL) this test owns.
    unique: str


@pytest.fixture(params=BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """The hot store and decision log of each backend, opened, dropped after the test."""
    backend = request.param
    unique = f"mrtest_{uuid.uuid4().hex[:12]}"
    hot, log = await open_stores(backend, tmp_path, unique)
    try:
        yield Stores(backend, hot, log, unique)
    finally:
        await hot.aclose()
        await log.aclose()
        if backend == "redis":
            await drop_redis_prefix(unique)
        if backend == "postgres":
            await drop_postgres_schema(unique)
