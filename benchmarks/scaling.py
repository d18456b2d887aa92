"""Scaling: ``serve --workers 2`` against one worker, and resident memory over a long run.

    python benchmarks/scaling.py workers [--requests 3000] [--rounds 3] [--clients 2]
    python benchmarks/scaling.py memory [--requests 100000] [--concurrency 32]

``workers``: ``modelrouter serve --workers N`` (N = 1, then 2, alternately over
``--rounds``) on one port with a shared SQLite file (``serve --workers`` refuses
per-process state), the shipped configuration and catalog (rules classifier), driven by
``--clients`` client processes (each with its own connections, so that SO_REUSEPORT
spreads them over the workers). Prints Route calls per second and the 2-worker / 1-worker
ratio (median of the rounds). Target (issue 14): >= 1.7x. The client processes share the
machine with the workers: on two cores they take a good part of it, which caps the ratio.

``memory``: one server (openai provider pointed at a local fake upstream that answers at
once; SQLite state, as shipped) receives a mix of Route, Classify, Execute and GetStats;
its resident set size is read from ``/proc`` after 1k requests and after ``--requests``.
Target: <= 1.1x.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from execute_overhead import run_router, run_upstream  # noqa: E402
from route_throughput import PROMPTS, resident_mb  # noqa: E402

WORKER_CONFIG = """
[server]
host = "127.0.0.1"

[storage]
hot = "sqlite"
log = "sqlite"
sqlite_path = "{path}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(port: int, requests: int, concurrency: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One client process: ``requests`` Route calls over ``concurrency`` channels."""
    import grpc

    from modelrouter import eventloop
    from modelrouter.v1 import router_pb2 as pb
    from modelrouter.v1 import router_pb2_grpc

    async def main() -> float:
        # One channel per worker coroutine: distinct connections, spread by SO_REUSEPORT.
        channels = [
            grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(concurrency)
        ]
        stubs = [router_pb2_grpc.ModelRouterStub(c) for c in channels]
        requests_pb = [
            pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=p)]) for p in PROMPTS
        ]
        for stub in stubs:  # connect and warm up
            await stub.Route(requests_pb[0], timeout=30)
        counter = iter(range(requests))

        async def worker(stub: router_pb2_grpc.ModelRouterStub) -> None:
            for i in counter:
                await stub.Route(requests_pb[i % len(requests_pb)], timeout=30)

        began = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in stubs))
        elapsed = time.perf_counter() - began
        for c in channels:
            await c.close()
        return elapsed

    out.put(eventloop.run(main()))


def _wait_ready(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


def _run_workers(workers: int, config: Path, args: argparse.Namespace) -> float:
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "modelrouter"),
            *("serve", "--config", str(config), "--port", str(port), "--http-port", "0"),
            *("--workers", str(workers), "--log-level", "WARNING"),
        ],
    )
    try:
        _wait_ready(port)
        time.sleep(2.0)  # every worker bound and serving
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        per_client = args.requests // args.clients
        clients = [
            context.Process(target=_client, args=(port, per_client, args.concurrency, out))
            for _ in range(args.clients)
        ]
        for c in clients:
            c.start()
        elapsed = max(out.get(timeout=600) for _ in clients)
        for c in clients:
            c.join()
        return per_client * args.clients / elapsed
    finally:
        server.terminate()
        server.wait(timeout=30)


def workers(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mr-scaling-"))
    config = tmp / "router.toml"
    # The shipped configuration, with its SQLite file in a temporary directory.
    import modelrouter

    shipped = (Path(modelrouter.__file__).parent / "default_config.toml").read_text()
    config.write_text(
        re.sub(r"(?m)^sqlite_path = .*$", f'sqlite_path = "{tmp / "state.db"}"', shipped)
    )
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for n in (1, 2):
            rates[n].append(_run_workers(n, config, args))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    print(
        f"Route, {args.requests} calls per run from {args.clients} client processes x "
        f"{args.concurrency} connections, median of {args.rounds} alternating rounds"
    )
    print(f"--workers 1   {one:8.0f} req/s")
    print(f"--workers 2   {two:8.0f} req/s")
    print(
        f"workers 2 / 1 throughput ratio: {two / one:.2f} (target >= 1.7); "
        f"per round: {', '.join(f'{r:.2f}' for r in ratios)}"
    )


def memory(args: argparse.Namespace) -> None:
    import grpc

    from modelrouter import eventloop
    from modelrouter.v1 import router_pb2 as pb
    from modelrouter.v1 import router_pb2_grpc

    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    upstream = context.Process(target=run_upstream, args=(0.0, ports), daemon=True)
    upstream.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/v1"
    # The shipped default storage: SQLite for budgets and the decision log (on a temp file).
    storage = WORKER_CONFIG.split("[storage]")[1].format(
        path=Path(tempfile.mkdtemp(prefix="mr-rss-")) / "state.db"
    )
    router = context.Process(
        target=run_router, args=(url, ports, "\n[storage]" + storage), daemon=True
    )
    router.start()
    port = ports.get(timeout=60)
    assert router.pid is not None
    pid = router.pid

    async def drive(total: int, stub: router_pb2_grpc.ModelRouterStub) -> None:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                prompt = PROMPTS[i % len(PROMPTS)] + f" #{i}"  # distinct prompts
                messages = [pb.Message(role=pb.ROLE_USER, content=prompt)]
                kind = i % 8
                if kind < 3:
                    await stub.Route(pb.RouteRequest(messages=messages), timeout=30)
                elif kind < 5:
                    await stub.Classify(pb.ClassifyRequest(messages=messages), timeout=30)
                elif kind < 7:
                    await stub.Execute(pb.ExecuteRequest(messages=messages), timeout=30)
                else:
                    await stub.GetStats(pb.GetStatsRequest(), timeout=30)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))

    async def main() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = router_pb2_grpc.ModelRouterStub(channel)
            await drive(1000, stub)
            after_1k = resident_mb(pid)
            began = time.perf_counter()
            await drive(args.requests - 1000, stub)
            elapsed = time.perf_counter() - began
            after_all = resident_mb(pid)
        print(
            f"mixed requests (3 Route : 2 Classify : 2 Execute : 1 GetStats), "
            f"concurrency {args.concurrency}, {(args.requests - 1000) / elapsed:.0f} req/s"
        )
        print(f"server RSS after 1k requests:  {after_1k:7.1f} MB")
        print(f"server RSS after {args.requests // 1000}k requests: {after_all:7.1f} MB")
        print(f"RSS ratio: {after_all / after_1k:.3f} (target <= 1.1)")

    try:
        eventloop.run(main())
    finally:
        router.terminate()
        upstream.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    w = commands.add_parser("workers", help="--workers 2 vs 1 Route throughput")
    w.add_argument("--requests", type=int, default=3000)
    w.add_argument("--concurrency", type=int, default=16, help="connections per client")
    w.add_argument("--clients", type=int, default=2)
    w.add_argument("--rounds", type=int, default=3)
    m = commands.add_parser("memory", help="server RSS after 100k mixed requests vs 1k")
    m.add_argument("--requests", type=int, default=100_000)
    m.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    workers(args) if args.command == "workers" else memory(args)


if __name__ == "__main__":
    main()
