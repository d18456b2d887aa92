"""Route and Classify throughput over gRPC, next to a bare grpc.aio echo server.

Both servers run in their own processes and are measured in the same run with the same
client, so the ratio says what routing costs on top of gRPC itself:

    python benchmarks/route_throughput.py [--requests 4000] [--concurrency 32]

Targets (issue 14): Route >= 0.85 of the echo server's throughput (rules classifier);
OTLP export on >= 0.9 of off; router resident memory < 150 MB after the run.

Each case also reports the server's CPU time per call (from /proc): on a shared machine
throughput swings with whatever else runs, while CPU per call barely moves, so the ratio
of CPU per call is the steadier estimate of what a saturated server would do.

The run ends with the cost of telemetry: Route on the router with every span and metric
exported over OTLP/gRPC to a local receiver (its own process), against the router with
telemetry off, measured alternately to spread drift over both.

Client and servers run on the event loop ``modelrouter.eventloop`` picks (uvloop when
installed, as ``modelrouter serve`` does; ``MODELROUTER_EVENT_LOOP=asyncio`` for
asyncio's): the same loop for the echo server and the router. On a shared two-core
machine a single run is noisy: ``--rounds`` repeats echo/router alternately and reports
medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

HERE = Path(__file__).parent
PROMPTS = [
    "What is the capital of France?",
    "Summarize the following paragraph in two sentences: "
    + "The committee met to discuss the budget. " * 8,
    "Write a Python function that merges two sorted lists, "
    "then explain its complexity step by step.",
    "Prove that the square root of 2 is irrational.",
    "Translate 'where is the train station' into German.",
    "Hi there! How are you today?",
]


def start_server(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_bench_servers.py"), *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(
    port: int,
    call: Callable[[router_pb2_grpc.ModelRouterStub, int], object],
    requests: int,
    concurrency: int,
    pid: int | None = None,
) -> dict[str, float]:
    """Throughput and latency of ``requests`` calls; with the server's ``pid``, also the
    server CPU time per call (robust on a busy machine, where throughput is not)."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        for i in range(50):  # warm-up: connections, caches
            await call(stub, i)  # type: ignore[misc]
        counter = iter(range(requests))

        async def worker() -> None:
            for i in counter:
                start = time.perf_counter()
                await call(stub, i)  # type: ignore[misc]
                latencies.append(time.perf_counter() - start)

        cpu_before = cpu_seconds(pid) if pid is not None else 0.0
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(pid) - cpu_before if pid is not None else float("nan")
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "cpu_ms": cpu * 1000 / requests,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def median(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def route(stub: router_pb2_grpc.ModelRouterStub, i: int) -> object:
    prompt = PROMPTS[i % len(PROMPTS)]
    return stub.Route(pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=prompt)]))


def classify(stub: router_pb2_grpc.ModelRouterStub, i: int) -> object:
    prompt = PROMPTS[i % len(PROMPTS)]
    return stub.Classify(
        pb.ClassifyRequest(messages=[pb.Message(role=pb.ROLE_USER, content=prompt)])
    )


def report(
    name: str, result: dict[str, float], baseline: dict[str, float], against: str = "echo"
) -> None:
    print(
        f"{name:<18} {result['rps']:>8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
        f"p99 {result['p99_ms']:6.2f} ms  server CPU {result['cpu_ms']:.3f} ms/call  "
        f"ratio to {against} {result['rps'] / baseline['rps']:.2f} "
        f"(by CPU {baseline['cpu_ms'] / result['cpu_ms']:.2f})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--config", help="router config (default: the test catalog)")
    parser.add_argument(
        "--sample-ratio",
        type=float,
        nargs="*",
        default=[1.0, 0.1],
        help="[telemetry] sample_ratio of each OTLP-on run (none: skip the telemetry runs)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of every case (medians)"
    )
    args = parser.parse_args()

    echo, echo_port = start_server("echo")
    router, router_port = start_server("router", *([args.config] if args.config else []))
    cases: dict[str, list[dict[str, float]]] = {
        "echo Route": [],
        "router Route": [],
        "echo Classify": [],
        "router Classify": [],
    }
    try:
        for _ in range(args.rounds):
            for name, process, port, call in (
                ("echo Route", echo, echo_port, route),
                ("router Route", router, router_port, route),
                ("echo Classify", echo, echo_port, classify),
                ("router Classify", router, router_port, classify),
            ):
                cases[name].append(
                    await load(port, call, args.requests, args.concurrency, process.pid)
                )
        rss = resident_mb(router.pid)
    finally:
        for process in (echo, router):
            process.kill()
            process.wait()
    echo_route, routed, echo_classify, classified = (median(r) for r in cases.values())
    ratios = [
        r["rps"] / e["rps"] for r, e in zip(cases["router Route"], cases["echo Route"], strict=True)
    ]
    print(
        f"{args.requests} requests per case, concurrency {args.concurrency}, rules classifier, "
        f"median of {args.rounds} alternating rounds"
    )
    report("echo Route", echo_route, echo_route)
    report("router Route", routed, echo_route)
    report("echo Classify", echo_classify, echo_classify)
    report("router Classify", classified, echo_classify)
    print(f"router resident memory after the run: {rss:.1f} MB (target < 150 MB)")
    print(
        f"Route throughput ratio: {routed['rps'] / echo_route['rps']:.2f} (target >= 0.85); "
        f"per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"by server CPU per call: {echo_route['cpu_ms'] / routed['cpu_ms']:.2f}"
    )
    for ratio in args.sample_ratio:
        await compare_telemetry(args.requests, args.concurrency, args.rounds, ratio)


async def compare_telemetry(requests: int, concurrency: int, rounds: int, ratio: float) -> None:
    receiver, receiver_port = start_server("otlp-receiver")
    plain, plain_port = start_server("router")
    traced, traced_port = start_server("router-otlp", str(receiver_port), str(ratio))
    off: list[dict[str, float]] = []
    on: list[dict[str, float]] = []
    try:
        for _ in range(rounds):
            off.append(await load(plain_port, route, requests, concurrency, plain.pid))
            on.append(await load(traced_port, route, requests, concurrency, traced.pid))
        rss = resident_mb(traced.pid)
    finally:
        for process in (plain, traced, receiver):
            process.kill()
            process.wait()

    off_median, on_median = median(off), median(on)
    print(
        f"telemetry (traces sampled: {ratio:g}; metrics on): median of {rounds} alternating "
        f"rounds of {requests} Route calls"
    )
    report("telemetry off", off_median, off_median, "off")
    report("telemetry on OTLP", on_median, off_median, "off")
    print(f"router with telemetry: resident memory {rss:.1f} MB")
    print(
        f"telemetry on/off Route throughput ratio: {on_median['rps'] / off_median['rps']:.2f} "
        f"(by server CPU per call: {off_median['cpu_ms'] / on_median['cpu_ms']:.2f})"
    )


if __name__ == "__main__":
    from modelrouter import eventloop

    eventloop.run(main())
