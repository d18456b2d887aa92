"""The server's event loop: uvloop when installed, asyncio's when asked or when it is not."""

from __future__ import annotations

import asyncio

import pytest

from modelrouter import eventloop


def test_run_returns_the_result_of_the_coroutine() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert eventloop.run(answer()) == 42


def test_uvloop_is_used_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert eventloop.loop_factory({}) is uvloop.new_event_loop
    assert eventloop.run(loop_type()) is uvloop.Loop


def test_operator_can_keep_asyncios_loop() -> None:
    assert eventloop.loop_factory({"MODELROUTER_EVENT_LOOP": "asyncio"}) is None


def test_grpc_aio_server_answers_on_the_chosen_loop() -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    async def check() -> int:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                return int(response.status)
        finally:
            await server.stop(None)

    assert eventloop.run(check()) == health_pb2.HealthCheckResponse.SERVING
