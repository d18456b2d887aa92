"""API keys, tenants and isolation; TLS. Health and reflection stay open."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelrouter.config import parse_config
from modelrouter.security import hash_key
from modelrouter.testing import TEST_CONFIG
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import rpc_error_details, user

AUTH = f"""
[auth]
enabled = true
[[auth.keys]]
tenant = "acme"
sha256 = "{hash_key("acme-secret")}"
[[auth.keys]]
tenant = "globex"
sha256 = "{hash_key("globex-secret")}"

[budgets.tenants.acme]
day_usd = 1.0
[budgets.tenants.globex]
day_usd = 2.0
"""


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@pytest.fixture
async def auth_server(modelrouter_server_factory):
    server = await modelrouter_server_factory(
        config=parse_config(TEST_CONFIG + AUTH, source="auth")
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield server, channel, router_pb2_grpc.ModelRouterStub(channel)


@pytest.mark.parametrize("metadata", [None, bearer("wrong"), [("authorization", "Basic abc")]])
async def test_missing_or_bad_key_is_unauthenticated(auth_server, metadata):
    _, _, stub = auth_server
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Route(pb.RouteRequest(messages=user("hello")), metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rpc_error_details(raised.value)["ErrorInfo"].reason == "UNAUTHENTICATED"


async def test_streaming_rpc_is_also_guarded(auth_server):
    _, _, stub = auth_server
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in stub.ExecuteStream(pb.ExecuteRequest(messages=user("hello"))):
            pass
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_need_no_key(auth_server):
    _, channel, _ = auth_server
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_tenants_see_only_their_own_usage_and_decisions(auth_server):
    server, _, stub = auth_server
    acme, globex = bearer("acme-secret"), bearer("globex-secret")
    executed = await stub.Execute(pb.ExecuteRequest(messages=user("hello")), metadata=acme)
    acme_usage = await stub.GetUsage(pb.GetUsageRequest(), metadata=acme)
    globex_usage = await stub.GetUsage(pb.GetUsageRequest(), metadata=globex)
    assert acme_usage.tenant == "acme" and acme_usage.windows[0].spent_usd == pytest.approx(
        executed.cost_usd
    )
    assert globex_usage.tenant == "globex" and globex_usage.windows[0].spent_usd == 0
    assert globex_usage.windows[0].limit_usd == 2.0
    record = await server.state.decisions.get(executed.decision_id)
    assert record.tenant == "acme"
    # Another tenant cannot even learn that the decision exists.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(decision_id=executed.decision_id, score=0.0), metadata=globex
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    ack = await stub.SubmitFeedback(
        pb.SubmitFeedbackRequest(decision_id=executed.decision_id, score=1.0, success=True),
        metadata=acme,
    )
    assert ack.duplicate is False


async def test_auth_config_rejects_malformed_key_hash():
    from modelrouter.errors import ConfigError

    with pytest.raises(ConfigError, match=r"auth.keys\[0\].sha256: expected 64 hex digits"):
        parse_config(
            TEST_CONFIG + '[auth]\nenabled = true\n[[auth.keys]]\ntenant = "a"\nsha256 = "abc"\n'
        )


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_and_mutual_tls(modelrouter_server_factory, tmp_path):
    server_cert, server_key = _self_signed(tmp_path, "server")
    client_cert, client_key = _self_signed(tmp_path, "client")
    tls = (
        f'[auth]\ntls_cert_file = "{server_cert}"\ntls_key_file = "{server_key}"\n'
        f'tls_client_ca_file = "{client_cert}"\n'
    )
    server = await modelrouter_server_factory(config=parse_config(TEST_CONFIG + tls))
    target = f"localhost:{server.port}"
    good = grpc.ssl_channel_credentials(
        root_certificates=server_cert.read_bytes(),
        private_key=client_key.read_bytes(),
        certificate_chain=client_cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(target, good) as channel:
        routed = await router_pb2_grpc.ModelRouterStub(channel).Route(
            pb.RouteRequest(messages=user("hi"))
        )
        assert routed.selected.model == "tiny"
    no_client_cert = grpc.ssl_channel_credentials(root_certificates=server_cert.read_bytes())
    async with grpc.aio.secure_channel(target, no_client_cert) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await router_pb2_grpc.ModelRouterStub(channel).Route(
                pb.RouteRequest(messages=user("hi")), timeout=5
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_get_stats_shows_a_tenant_only_its_own_traffic(auth_server):
    _, _, stub = auth_server
    for _ in range(3):
        await stub.Route(pb.RouteRequest(messages=user("hello")), metadata=bearer("acme-secret"))
    await stub.Route(pb.RouteRequest(messages=user("hello")), metadata=bearer("globex-secret"))
    acme = await stub.GetStats(pb.GetStatsRequest(), metadata=bearer("acme-secret"))
    globex = await stub.GetStats(pb.GetStatsRequest(), metadata=bearer("globex-secret"))
    assert acme.decisions == 3 and globex.decisions == 1
    route_calls = {m.method: m.requests for m in acme.methods}
    assert route_calls["Route"] == 3
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetStats(pb.GetStatsRequest())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_cli_client_commands_authenticate_with_api_key(auth_server, capsys):
    import asyncio
    import json

    from modelrouter.cli import main

    server, _, _ = auth_server
    target = f"127.0.0.1:{server.port}"

    def cli(*argv: str) -> int:
        return main([*argv, "--target", target, "--json"])

    assert await asyncio.to_thread(cli, "route", "hello") == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "route", "hello", "--api-key", "acme-secret") == 0
    decision_id = json.loads(capsys.readouterr().out)["decision_id"]
    assert (
        await asyncio.to_thread(cli, "feedback", decision_id, "0.9", "--api-key", "acme-secret")
        == 0
    )
    recorded = json.loads(capsys.readouterr().out)
    assert recorded["decision_id"] == decision_id and not recorded.get("duplicate")
    assert (
        await asyncio.to_thread(cli, "feedback", decision_id, "0.9", "--api-key", "acme-secret")
        == 0
    )
    assert json.loads(capsys.readouterr().out)["duplicate"] is True
    assert await asyncio.to_thread(cli, "usage", "--api-key", "acme-secret") == 0
    usage = json.loads(capsys.readouterr().out)
    assert usage["tenant"] == "acme"
    assert {w["window"] for w in usage["windows"]} == {"day"}
    # Another tenant cannot give feedback on acme's decision.
    assert (
        await asyncio.to_thread(cli, "feedback", decision_id, "0.1", "--api-key", "globex-secret")
        == 1
    )
    assert "NOT_FOUND" in capsys.readouterr().err
