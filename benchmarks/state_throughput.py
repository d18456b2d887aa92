"""Route throughput with each storage backend, against the stateless in-memory default.

Starts a real in-process server per backend on the test catalog (fake providers), sends
``--requests`` Route calls with ``--concurrency`` in flight, and prints requests per
second and the ratio to the ``memory`` backend. Every Route logs its decision (and, with
a budget, reads usage), so the ratio is the price of durable, shared state.

    .venv/bin/python benchmarks/state_throughput.py [--requests 2000] [--concurrency 32]
        [--rounds 3] [--no-budget] [--memory-log]

``--memory-log`` keeps every backend's decision log in memory, so the ratio is the price of
the hot store alone (budget usage reads, reservations), apart from the durable log.

Every backend is measured once per round, the rounds alternate, and each backend's ratio
is the median of its per-round ratios to ``memory + budget`` (the same work, state in
process), so that drift on a shared machine falls on every backend alike.

Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, database ``test``) are used when
reachable and reported as skipped otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.state_fixtures import (  # noqa: E402
    POSTGRES_URL,
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


CASES = {
    "memory": "memory + budget",
    "sqlite": "sqlite + budget",
    "redis": "redis hot + sqlite log",
    "postgres": "postgres hot + log",
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of every backend (medians)"
    )
    parser.add_argument(
        "--no-budget",
        action="store_true",
        help="no [budgets]: Route writes the decision log only (no usage read per call)",
    )
    parser.add_argument(
        "--log-only", action="store_true", help="only the decision log's record() rate"
    )
    parser.add_argument(
        "--memory-log",
        action="store_true",
        help="decision log in memory for every backend: the hot store's price alone",
    )
    args = parser.parse_args()
    budget = "" if args.no_budget else BUDGET
    tmp = Path(tempfile.mkdtemp(prefix="mr-bench-"))
    if not args.memory_log:
        await log_writes(tmp, args.requests, args.concurrency)
    if args.log_only:
        return
    rates: dict[str, list[float]] = {"plain": [], **{b: [] for b in CASES}}
    skipped: dict[str, str] = {}
    for round_ in range(args.rounds):
        rates["plain"].append(await measure(TEST_CONFIG, args.requests, args.concurrency))
        for backend in CASES:
            if backend in skipped:
                continue
            unique = f"mrbench_{uuid.uuid4().hex[:10]}"
            path = tmp / f"{backend}-{round_}"
            table = storage_table(backend, path, unique)
            if args.memory_log:
                table = re.sub(r'(?m)^log = "\w+"$', 'log = "memory"', table)
            text = TEST_CONFIG + "\n" + table + budget
            try:
                rates[backend].append(await measure(text, args.requests, args.concurrency))
            except Exception as error:  # an unreachable service is reported, not fatal
                skipped[backend] = str(error)
            finally:
                if backend == "redis":
                    await _quietly(drop_redis_prefix(unique))
                if backend == "postgres":
                    await _quietly(drop_postgres_schema(unique))
    print(
        f"{args.requests} Route calls per case, concurrency {args.concurrency}, "
        f"median of {args.rounds} alternating rounds{'' if budget else ', no budget'}"
        f"{', decision log in memory' if args.memory_log else ''}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    against = "vs memory+budget" if budget else "vs memory"
    print(f"{'backend':<28} {'Route/s':>10} {against:>17} {'per round':>20}")
    plain = statistics.median(rates["plain"])
    print(f"{'memory (no [storage])':<28} {plain:>10.0f}")
    for backend, label in CASES.items():
        label = label if budget else label.replace(" + budget", "")
        if args.memory_log and backend != "memory":
            label = f"{backend} hot, memory log"
        if backend in skipped:
            print(f"{label:<28} skipped: {skipped[backend]}")
            continue
        per_round = [r / m for r, m in zip(rates[backend], rates["memory"], strict=False)]
        print(
            f"{label:<28} {statistics.median(rates[backend]):>10.0f} "
            f"{statistics.median(per_round):>17.2f} "
            f"{', '.join(f'{r:.2f}' for r in per_round):>20}"
        )


async def log_writes(tmp: Path, requests: int, concurrency: int) -> None:
    """The decision log alone: ``record`` calls per second from ``concurrency`` writers,
    written through (one transaction each, as before group commits) and group-committed
    (:class:`~modelrouter.state.batching.BatchedDecisionLog`, as the server wires it), with
    every row committed at the end of the measured time."""
    from modelrouter.state.batching import BatchedDecisionLog
    from modelrouter.state.interfaces import DecisionLog, DecisionRecord
    from modelrouter.state.postgres import PostgresDecisionLog
    from modelrouter.state.sqlite import SqliteDecisionLog

    def row(i: int) -> DecisionRecord:
        return DecisionRecord(
            uuid.uuid4().hex, "default", time.time(), "route", "SIMPLE", "QA", "rules",
            (), "tiny", 2e-5, "cheapest of 3 eligible models",
        )  # fmt: skip

    async def rate(log: DecisionLog) -> float:
        await log.open()
        try:
            queue = iter(range(requests))

            async def writer() -> None:
                for i in queue:
                    await log.record(row(i))

            start = time.perf_counter()
            await asyncio.gather(*(writer() for _ in range(concurrency)))
            if isinstance(log, BatchedDecisionLog):
                await log.flush()
            return requests / (time.perf_counter() - start)
        finally:
            await log.aclose()

    print(f"decision log alone: {requests} record() calls, {concurrency} writers")
    print(f"{'log':<12} {'direct/s':>10} {'grouped/s':>10} {'ratio':>7}")
    for name in ("sqlite", "postgres"):
        unique = f"mrbench_{uuid.uuid4().hex[:10]}"

        def make(name: str = name, unique: str = unique) -> DecisionLog:
            if name == "sqlite":
                return SqliteDecisionLog(str(tmp / f"log-{unique}.db"))
            return PostgresDecisionLog(POSTGRES_URL, unique)

        try:
            direct = await rate(make())
            grouped = await rate(BatchedDecisionLog(make()))
        except Exception as error:  # an unreachable service is reported, not fatal
            print(f"{name:<12} skipped: {error}")
            continue
        finally:
            if name == "postgres":
                await _quietly(drop_postgres_schema(unique))
        print(f"{name:<12} {direct:>10.0f} {grouped:>10.0f} {grouped / direct:>7.1f}")


async def _quietly(cleanup: object) -> None:
    with contextlib.suppress(Exception):
        await cleanup  # type: ignore[misc]


if __name__ == "__main__":
    from modelrouter import eventloop

    eventloop.run(main())
