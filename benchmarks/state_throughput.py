"""Route throughput with each storage backend, against the stateless in-memory default.

Starts a real in-process server per backend on the test catalog (fake providers), sends
``--requests`` Route calls with ``--concurrency`` in flight, and prints requests per
second and the ratio to the ``memory`` backend. Every Route logs its decision (and, with
a budget, reads usage), so the ratio is the price of durable, shared state.

    .venv/bin/python benchmarks/state_throughput.py [--requests 2000] [--concurrency 32]

Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, database ``test``) are used when
reachable and reported as skipped otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.state_fixtures import (  # noqa: E402
    drop_postgres_schema,
    drop_redis_prefix,
    storage_table,
)

from modelrouter.config import parse_config  # noqa: E402
from modelrouter.server import create_server  # noqa: E402
from modelrouter.testing import TEST_CONFIG, fake_provider_plugin  # noqa: E402
from modelrouter.v1 import router_pb2 as pb  # noqa: E402
from modelrouter.v1 import router_pb2_grpc  # noqa: E402

BUDGET = "\n[budgets.default]\nday_usd = 1000000.0\n"


async def measure(config_text: str, requests: int, concurrency: int) -> float:
    server = await create_server(
        parse_config(config_text),
        host="127.0.0.1",
        port=0,
        plugins=[fake_provider_plugin],
        http_port=0,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = router_pb2_grpc.ModelRouterStub(channel)
            request = pb.RouteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="What is the capital of France?")]
            )
            for _ in range(50):
                await stub.Route(request)
            queue = iter(range(requests))

            async def worker() -> None:
                for _ in queue:
                    await stub.Route(request)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return requests / (time.perf_counter() - start)
    finally:
        await server.stop(grace=0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mr-bench-"))
    baseline = await measure(TEST_CONFIG, args.requests, args.concurrency)
    print(f"{'backend':<28} {'Route/s':>10} {'vs memory':>10}")
    print(f"{'memory (no [storage])':<28} {baseline:>10.0f} {1.0:>10.2f}")
    for backend in ("memory", "sqlite", "redis", "postgres"):
        unique = f"mrbench_{uuid.uuid4().hex[:10]}"
        text = TEST_CONFIG + "\n" + storage_table(backend, tmp / backend, unique) + BUDGET
        label = {"redis": "redis hot + sqlite log", "postgres": "postgres hot + log"}.get(
            backend, f"{backend} + budget"
        )
        try:
            rate = await measure(text, args.requests, args.concurrency)
        except Exception as error:  # an unreachable service is reported, not fatal
            print(f"{label:<28} skipped: {error}")
            continue
        finally:
            if backend == "redis":
                await _quietly(drop_redis_prefix(unique))
            if backend == "postgres":
                await _quietly(drop_postgres_schema(unique))
        print(f"{label:<28} {rate:>10.0f} {rate / baseline:>10.2f}")


async def _quietly(cleanup: object) -> None:
    with contextlib.suppress(Exception):
        await cleanup  # type: ignore[misc]


if __name__ == "__main__":
    asyncio.run(main())
