"""Latency the HTTP face adds on top of calling the upstream directly.

The same fixed-delay (20 ms) OpenAI upstream as ``execute_overhead.py`` is called with the
official ``openai`` SDK twice: directly, and through modelrouter's OpenAI-compatible face
(``POST /v1/chat/completions`` with ``model="auto"``: auth off, routing, the budget hold,
the decision log, the provider call and the answer's translation), at concurrency 1 and 16.
Upstream, router and client each run in their own process. The client is identical on
both paths, so the difference is what the face and the pipeline behind it add.

    python benchmarks/http_overhead.py [--requests 400] [--latency-ms 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from execute_overhead import run_upstream  # the fixed-delay upstream, shared


async def measure(
    call: Callable[[], Awaitable[object]], requests: int, concurrency: int
) -> list[float]:
    """Latencies (ms) of ``requests`` calls with ``concurrency`` in flight."""
    for _ in range(min(20, requests)):  # warm connections and caches
        await call()
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_router(base_url: str, ports: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import logging

    from modelrouter import eventloop
    from modelrouter.config import parse_config
    from modelrouter.server import create_server

    logging.disable(logging.WARNING)
    config = parse_config(f"""
[providers.bench]
type = "openai"
api_key_env = "BENCH_KEY"
base_url = "{base_url}"

[[models]]
name = "bench"
provider = "bench"
input_price_usd_per_mtok = 1.0
output_price_usd_per_mtok = 1.0
context_window_tokens = 100000
typical_latency_ms = 20
quality = 0.9
""")

    async def main() -> None:
        server = await create_server(
            config, host="127.0.0.1", port=0, http_port=-1, environ={"BENCH_KEY": "sk-bench"}
        )
        ports.put(server.http.port)
        await server.wait_for_termination()

    eventloop.run(main())


async def bench(upstream_url: str, face_url: str, requests: int, rounds: int) -> None:
    import openai

    direct_client = openai.AsyncOpenAI(api_key="sk-bench", base_url=upstream_url, max_retries=0)
    face_client = openai.AsyncOpenAI(api_key="unused", base_url=face_url, max_retries=0)
    messages = [{"role": "user", "content": "hello"}]

    async def direct() -> object:
        return await direct_client.chat.completions.create(
            model="bench", messages=messages, max_tokens=16  # type: ignore[arg-type]
        )

    async def face() -> object:
        return await face_client.chat.completions.create(
            model="auto", messages=messages, max_tokens=16  # type: ignore[arg-type]
        )

    print(
        f"{'concurrency':>11} {'direct p50':>10} {'p99':>7} {'face p50':>9} {'p99':>7} "
        f"{'added p50':>9} {'added p99':>9}"
    )
    for concurrency in (1, 16):
        n = requests if concurrency == 1 else requests * 4
        base: list[float] = []
        through: list[float] = []
        for _ in range(rounds):  # alternate direct / face to spread drift over both
            base += await measure(direct, n, concurrency)
            through += await measure(face, n, concurrency)
        b50, b99 = percentile(base, 50), percentile(base, 99)
        t50, t99 = percentile(through, 50), percentile(through, 99)
        print(
            f"{concurrency:>11} {b50:>8.2f}ms {b99:>5.2f}ms {t50:>7.2f}ms {t99:>5.2f}ms "
            f"{t50 - b50:>7.2f}ms {t99 - b99:>7.2f}ms"
        )
    await direct_client.close()
    await face_client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="calls per measurement at c=1")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per level")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    upstream = context.Process(
        target=run_upstream, args=(args.latency_ms / 1000, ports), daemon=True
    )
    upstream.start()
    upstream_url = f"http://127.0.0.1:{ports.get(timeout=30)}/v1"
    router = context.Process(target=run_router, args=(upstream_url, ports), daemon=True)
    router.start()
    face_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
    from modelrouter import eventloop

    try:
        eventloop.run(bench(upstream_url, face_url, args.requests, args.rounds))
    finally:
        router.terminate()
        upstream.terminate()


if __name__ == "__main__":
    main()
