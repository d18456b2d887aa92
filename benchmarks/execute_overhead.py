"""Latency Execute adds on top of calling the upstream directly.

A fake OpenAI upstream answers every chat completion after a fixed delay (20 ms). We call
it directly with the openai SDK, then through Execute over gRPC (a real server from
``create_server`` on port 0, configured with an openai provider pointing at the fake's
base_url), at concurrency 1 and 16, alternately over ``--rounds``, and print the added latency at
p50/p99 (percentiles over every round's calls) and the routed/direct throughput ratio
(median of the rounds).
Upstream, server and client each run in their own process so that they do not share an
event loop. Targets (issue 14): added <= 1 ms p50 and <= 3 ms p99 at c=1; <= 3 ms p50
and throughput >= 0.95x of direct at c=16.

Methodology: the fake upstream is a bare asyncio protocol answering HTTP/1.1 keep-alive
requests with a fixed body (it used to be aiohttp, whose per-request CPU competed with the
router for the same two cores); both paths call the same upstream. All three processes
run on the event loop ``modelrouter.eventloop`` picks (uvloop when installed), as
``modelrouter serve`` does, so the direct SDK call and the router's SDK call get the same
loop. Set ``MODELROUTER_EVENT_LOOP=asyncio`` to measure on asyncio's loop instead.
At high concurrency a two-core machine saturates: the added latency there is mostly
queueing for CPU behind the extra work (a gRPC call on both ends, routing).

    python benchmarks/execute_overhead.py [--requests 400] [--latency-ms 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


class _Upstream(asyncio.Protocol):
    """One keep-alive connection: answers each complete request ``latency_s`` later.

    An HTTP client sends its next request on a connection only after the previous answer,
    so a connection has at most one request waiting.
    """

    def __init__(self, latency_s: float, answer: bytes) -> None:
        self.latency_s = latency_s
        self.answer = answer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (head_end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            asyncio.get_running_loop().call_later(self.latency_s, self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.answer)


def run_upstream(latency_s: float, ports: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from modelrouter import eventloop

    body = json.dumps(COMPLETION).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Upstream(latency_s, answer), "127.0.0.1", 0, backlog=1024
        )
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    eventloop.run(main())


def run_router(
    base_url: str,
    ports: multiprocessing.Queue,  # type: ignore[type-arg]
    extra_config: str = "",
    face: str = "grpc",
) -> None:
    """The router with one openai provider at ``base_url`` (``extra_config``: more TOML);
    puts the port of its ``face`` (``grpc`` or ``http``) on ``ports``."""
    import logging

    from modelrouter import eventloop
    from modelrouter.config import parse_config
    from modelrouter.server import create_server

    logging.disable(logging.WARNING)
    config = parse_config(
        f"""
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
"""
        + extra_config
    )

    async def main() -> None:
        server = await create_server(
            config,
            host="127.0.0.1",
            port=0,
            http_port=-1 if face == "http" else 0,
            environ={"BENCH_KEY": "sk-bench"},
        )
        ports.put(server.http.port if face == "http" and server.http else server.port)
        await server.wait_for_termination()

    eventloop.run(main())


async def measure(
    call: Callable[[], Awaitable[object]], requests: int, concurrency: int
) -> tuple[list[float], float]:
    """Latencies (ms) of ``requests`` calls, ``concurrency`` in flight, and calls per second."""
    for _ in range(min(20, requests)):  # warm connections and caches
        await call()
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, requests / (time.perf_counter() - began)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def bench(
    upstream_url: str,
    router_port: int,
    requests: int,
    concurrencies: list[int],
    rounds: int,
) -> None:
    import grpc
    import openai

    from modelrouter.v1 import router_pb2 as pb
    from modelrouter.v1 import router_pb2_grpc

    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=upstream_url, max_retries=0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{router_port}")
    stub = router_pb2_grpc.ModelRouterStub(channel)
    messages = [{"role": "user", "content": "hello"}]
    request = pb.ExecuteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hello")])

    async def direct() -> object:
        return await client.chat.completions.create(model="bench", messages=messages, max_tokens=16)  # type: ignore[arg-type]

    async def routed() -> object:
        return await stub.Execute(request, timeout=10)

    print(
        f"{'concurrency':>11} {'direct p50':>10} {'p99':>7} {'execute p50':>11} {'p99':>7} "
        f"{'added p50':>9} {'added p99':>9} {'tput ratio':>10}"
    )
    for concurrency in concurrencies:
        n = requests if concurrency == 1 else requests * 4
        base: list[float] = []
        through: list[float] = []
        rates: list[tuple[float, float]] = []
        for _ in range(rounds):  # alternate direct / routed to spread drift over both
            latencies, direct_rate = await measure(direct, n, concurrency)
            base += latencies
            latencies, routed_rate = await measure(routed, n, concurrency)
            through += latencies
            rates.append((direct_rate, routed_rate))
        b50, b99 = percentile(base, 50), percentile(base, 99)
        t50, t99 = percentile(through, 50), percentile(through, 99)
        ratio = statistics.median(r / d for d, r in rates)
        print(
            f"{concurrency:>11} {b50:>8.2f}ms {b99:>5.2f}ms {t50:>9.2f}ms {t99:>5.2f}ms "
            f"{t50 - b50:>7.2f}ms {t99 - b99:>7.2f}ms {ratio:>9.3f}x"
        )
    await channel.close()
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="calls per measurement at c=1")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
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
    router_port = ports.get(timeout=60)
    from modelrouter import eventloop

    try:
        eventloop.run(
            bench(upstream_url, router_port, args.requests, args.concurrency, args.rounds)
        )
    finally:
        router.terminate()
        upstream.terminate()


if __name__ == "__main__":
    main()
