"""Circuit breakers shared through Redis: one replica's failures cool a model for all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from modelrouter.config import parse_config
from modelrouter.errors import ProviderError
from modelrouter.execution import InMemoryCircuitBreaker
from modelrouter.state.redis_circuit import RedisCircuitBreaker
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user
from .state_fixtures import REDIS_URL, drop_redis_prefix, require_redis, storage_table

EXECUTION = """
[execution]
max_attempts_per_model = 2
backoff_base_s = 0.001
circuit_failure_threshold = 2
circuit_cooldown_s = 30
"""


def server_error() -> ProviderError:
    return ProviderError("server_error", "HTTP 500: boom", retryable=True)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    await require_redis()
    unique = f"mrtest_{uuid.uuid4().hex[:12]}"
    yield unique
    await drop_redis_prefix(unique)


@pytest.fixture
async def client(prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _eventually(check, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)


async def test_failures_on_one_server_open_the_circuit_on_the_other(
    prefix: str, tmp_path: Path, modelrouter_server_factory
):
    text = TEST_CONFIG + EXECUTION + storage_table("redis", tmp_path, prefix)
    first = await modelrouter_server_factory(config=parse_config(text))
    second = await modelrouter_server_factory(config=parse_config(text))
    assert isinstance(second.catalog.breaker, RedisCircuitBreaker)
    FakeProvider.enqueue("budget", server_error(), server_error())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        answer = await router_pb2_grpc.ModelRouterStub(channel).Execute(
            pb.ExecuteRequest(messages=user("hello"))
        )
    # tiny failed twice on the first server (threshold 2): it answered from a fallback.
    assert answer.model != "tiny"

    breaker = second.catalog.breaker
    await _eventually(lambda: breaker.open_reason("tiny") is not None)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        models = {m.name: m for m in (await stub.ListModels(pb.ListModelsRequest())).models}
        route = await stub.Route(pb.RouteRequest(messages=user("hello")))
    assert not models["tiny"].available
    assert "circuit open after 2 consecutive failures" in models["tiny"].unavailable_reason
    assert "(last: server_error)" in models["tiny"].unavailable_reason
    assert route.selected.model == "small-coder"
    assert "skipped while cooling down: tiny" in route.reason


async def test_memory_and_sqlite_keep_the_in_process_breaker(
    tmp_path: Path, modelrouter_server_factory
):
    for backend in ("memory", "sqlite"):
        text = TEST_CONFIG + storage_table(backend, tmp_path, "unused")
        server = await modelrouter_server_factory(config=parse_config(text))
        assert isinstance(server.catalog.breaker, InMemoryCircuitBreaker), backend


async def test_replicas_count_failures_together_and_a_success_closes_for_all(
    prefix: str, client: aioredis.Redis
):
    one = RedisCircuitBreaker(client, prefix, 10, 30.0, refresh_s=0.05)
    two = RedisCircuitBreaker(client, prefix, 10, 30.0, refresh_s=0.05)
    await one.start()
    await two.start()
    try:
        # 10 failures raced from two replicas: none is lost, so the 10th opens the circuit.
        await asyncio.gather(
            *(b.record_failure("tiny", "timeout") for b in [one, two] * 5),
        )
        assert (one.open_reason("tiny") is not None) or (two.open_reason("tiny") is not None)
        await _eventually(lambda: one.open_reason("tiny") and two.open_reason("tiny"))
        assert "circuit open after 10 consecutive failures (last: timeout)" in (
            two.open_reason("tiny") or ""
        )
        # Request-caused errors say nothing about the model's health.
        await one.record_failure("large", "bad_request")
        assert await client.hget(f"{prefix}:circuit", "large|n") is None

        await two.record_success("tiny")
        assert two.open_reason("tiny") is None
        await _eventually(lambda: one.open_reason("tiny") is None)
    finally:
        await one.aclose()
        await two.aclose()


async def test_half_open_after_cooldown_and_one_more_failure_reopens(
    prefix: str, client: aioredis.Redis
):
    one = RedisCircuitBreaker(client, prefix, 2, 0.3, refresh_s=0.05)
    two = RedisCircuitBreaker(client, prefix, 2, 0.3, refresh_s=0.05)
    await one.start()
    await two.start()
    try:
        await one.record_failure("tiny", "server_error")
        await two.record_failure("tiny", "server_error")
        assert two.open_reason("tiny") is not None
        await asyncio.sleep(0.35)
        assert one.open_reason("tiny") is None and two.open_reason("tiny") is None
        # The trial call after the cooldown fails: cooling down again at once, everywhere.
        await one.record_failure("tiny", "connection")
        assert "after 3 consecutive failures" in (one.open_reason("tiny") or "")
        await _eventually(lambda: two.open_reason("tiny") is not None)
    finally:
        await one.aclose()
        await two.aclose()


async def test_unreachable_redis_degrades_to_a_local_breaker(caplog):
    client = aioredis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    breaker = RedisCircuitBreaker(client, "unused", 2, 30.0, refresh_s=0.05)
    try:
        await breaker.start()  # logs, does not raise
        await breaker.record_failure("tiny", "server_error")
        assert breaker.open_reason("tiny") is None
        await breaker.record_failure("tiny", "server_error")
        assert "after 2 consecutive failures" in (breaker.open_reason("tiny") or "")
        await breaker.record_success("tiny")
        assert breaker.open_reason("tiny") is None
        assert "cannot read the shared state from Redis" in caplog.text
    finally:
        await breaker.aclose()
        await client.aclose()
