"""The router's own CPU per call, without the network: what a Route costs in Python.

Builds the real server (``create_server``, test catalog, rules classifier, telemetry off)
and calls its stages and its servicer methods in-process with a stand-in gRPC context,
timing CPU (``time.process_time``) rather than wall time, so the figure barely moves when
other processes share the machine. The gRPC layer itself is what ``route_throughput.py``
adds on top.

    python benchmarks/route_cpu.py [--calls 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from modelrouter import convert, limits
from modelrouter.config import parse_config
from modelrouter.pipeline import Call
from modelrouter.security import Authenticator, RateLimiter
from modelrouter.server import SERVICE_NAME, create_server
from modelrouter.servicer import ModelRouterServicer
from modelrouter.telemetry.rpc import RpcTelemetry
from modelrouter.testing import TEST_CONFIG, fake_provider_plugin
from modelrouter.v1 import router_pb2 as pb

PROMPT = (
    "Write a Python function that merges two sorted lists, then explain its complexity step "
    "by step."
)


class _Context:
    """What the servicer reads of a ``grpc.aio.ServicerContext`` on a successful call."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def time_remaining(self) -> None:
        return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = parse_config(TEST_CONFIG)
    server = await create_server(
        config, host="127.0.0.1", port=0, plugins=[fake_provider_plugin], http_port=0
    )
    servicer = ModelRouterServicer(
        config=config,
        pipeline=server.pipeline,
        catalog=server.catalog,
        registry=server.registry,
        state=server.state,
        stats=server.telemetry.stats,
        authenticator=Authenticator(config.state.auth),
        rate_limiter=RateLimiter(
            config.limits.tenant_requests_per_second, config.limits.tenant_request_burst
        ),
        rpc=RpcTelemetry(server.telemetry, SERVICE_NAME),
    )
    route_pb = pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=PROMPT)])
    classify_pb = pb.ClassifyRequest(messages=route_pb.messages)
    request = convert.request_from_proto(route_pb)
    context: Any = _Context()
    call = Call("Route")

    async def convert_request() -> None:
        limits.check_request(route_pb, config.limits)
        convert.request_from_proto(route_pb)

    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "limits + convert": convert_request,
        "pipeline.classify": lambda: server.pipeline.classify(call, request),
        "pipeline.route": lambda: server.pipeline.route(call, request),
        "servicer Classify": lambda: servicer.Classify(classify_pb, context),
        "servicer Route": lambda: servicer.Route(route_pb, context),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for function in cases.values():  # warm-up
            for _ in range(200):
                await function()
        for _ in range(args.rounds):
            for name, function in cases.items():
                began = time.process_time()
                for _ in range(args.calls):
                    await function()
                results[name].append((time.process_time() - began) / args.calls * 1e6)
    finally:
        await server.stop(grace=0)
    print(f"CPU per call, median of {args.rounds} rounds of {args.calls} calls (microseconds)")
    for name, values in results.items():
        print(f"{name:<20} {statistics.median(values):8.1f} us")


if __name__ == "__main__":
    from modelrouter import eventloop

    eventloop.run(main())
