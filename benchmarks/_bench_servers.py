"""Servers the benchmarks start in their own processes, so the client does not share their loop.

    python benchmarks/_bench_servers.py echo       # bare grpc.aio ModelRouter returning a constant
    python benchmarks/_bench_servers.py router     # the real server on the test catalog
    python benchmarks/_bench_servers.py router-otlp PORT [RATIO]  # ... exporting traces and
                                    # metrics over OTLP/gRPC to 127.0.0.1:PORT, sampling RATIO
                                    # of the traces (default 1.0: every one)
    python benchmarks/_bench_servers.py otlp-receiver      # a receiver that stores exports

Each prints its port on the first line of stdout, then serves until killed. Every server
runs on the event loop ``modelrouter.eventloop`` picks (uvloop when installed, as
``modelrouter serve`` does), so echo and router are compared on the same loop.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc

from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc


class EchoRouter(router_pb2_grpc.ModelRouterServicer):
    """The cheapest possible ModelRouter: answers a fixed message of realistic size."""

    ROUTE = pb.RouteResponse(
        decision_id="00000000-0000-0000-0000-000000000000",
        classification=pb.ClassifyResponse(
            complexity=1,
            task_type=2,
            score=0.1,
            confidence=0.7,
            classifier="echo",
            features={"word_count": 7.0},
        ),
        selected=pb.Candidate(
            model="tiny",
            provider="budget",
            estimated_cost_usd=2e-5,
            estimated_latency_ms=200,
            quality=0.4,
        ),
        fallbacks=[
            pb.Candidate(
                model="large",
                provider="premium",
                estimated_cost_usd=1e-3,
                estimated_latency_ms=1500,
                quality=0.9,
            )
        ],
        reason="echo",
    )

    async def Route(self, request, context):
        return self.ROUTE

    async def Classify(self, request, context):
        return self.ROUTE.classification


async def run(kind: str) -> None:
    if kind == "otlp-receiver":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.otlp_receiver import OtlpReceiver

        receiver = OtlpReceiver().start()
        print(receiver.grpc_port, flush=True)
        await asyncio.Event().wait()  # serve (in threads) until killed
    if kind == "router-otlp":
        from modelrouter.config import parse_config
        from modelrouter.server import create_server
        from modelrouter.testing import TEST_CONFIG, fake_provider_plugin

        ratio = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
        telemetry = (
            f'\n[telemetry]\notlp_endpoint = "http://127.0.0.1:{sys.argv[2]}"\n'
            f"metric_export_interval_s = 5\nsample_ratio = {ratio}\n"
        )
        config = parse_config(TEST_CONFIG + telemetry)
        started = await create_server(
            config,
            host="127.0.0.1",
            port=0,
            plugins=[fake_provider_plugin],
            environ={},
            http_port=0,
        )
        print(started.port, flush=True)
        await started.grpc_server.wait_for_termination()
        return
    if kind == "echo":
        server = grpc.aio.server()
        router_pb2_grpc.add_ModelRouterServicer_to_server(EchoRouter(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
    else:
        from modelrouter.config import load_config, parse_config
        from modelrouter.server import create_server
        from modelrouter.testing import TEST_CONFIG, fake_provider_plugin

        config = load_config(sys.argv[2]) if len(sys.argv) > 2 else parse_config(TEST_CONFIG)
        started = await create_server(
            config, host="127.0.0.1", port=0, plugins=[fake_provider_plugin], http_port=0
        )
        server, port = started.grpc_server, started.port
    print(port, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    from modelrouter import eventloop

    eventloop.run(run(sys.argv[1]))
