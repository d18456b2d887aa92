"""SubmitFeedback: durable before acknowledged, NOT_FOUND for unknown decisions, idempotent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from modelrouter.config import parse_config
from modelrouter.state.adaptive import arm_key
from modelrouter.testing import TEST_CONFIG
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import rpc_error_details, user
from .test_budgets import _read_port, _start_process


async def _route(stub, text: str = "What is the capital of France?") -> pb.RouteResponse:
    return await stub.Route(pb.RouteRequest(messages=user(text)))


async def test_feedback_on_unknown_decision_is_not_found(modelrouter_stub):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await modelrouter_stub.stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(decision_id="00000000-0000-0000-0000-000000000000", score=1.0)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error_details(raised.value)["ResourceInfo"].resource_type == "decision"


async def test_feedback_score_out_of_range_names_the_field(modelrouter_stub):
    routed = await _route(modelrouter_stub.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await modelrouter_stub.stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(decision_id=routed.decision_id, score=1.5)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = rpc_error_details(raised.value)["BadRequest"].field_violations
    assert [v.field for v in violations] == ["score"]


async def test_a_later_feedback_replaces_the_earlier_one_whatever_its_source(modelrouter_stub):
    routed = await _route(modelrouter_stub.stub)
    send = modelrouter_stub.stub.SubmitFeedback
    first = await send(
        pb.SubmitFeedbackRequest(decision_id=routed.decision_id, score=0.9, success=True)
    )
    repeat = await send(
        pb.SubmitFeedbackRequest(decision_id=routed.decision_id, score=0.9, success=True)
    )
    other = await send(
        pb.SubmitFeedbackRequest(
            decision_id=routed.decision_id, score=0.5, success=True, source="judge"
        )
    )
    assert (first.duplicate, repeat.duplicate, other.duplicate) == (False, True, False)
    state = modelrouter_stub.server.state
    stats = await state.hot.arm_stats(arm_key("simple", "qa", "default"))
    # One decision counts once: the judge's 0.5 replaced the first 0.9.
    assert stats["tiny"].count == 1 and stats["tiny"].reward_sum == pytest.approx(0.5)
    [row] = [row async for row in state.decisions.export()]
    assert [(f.source, f.score) for f in row.feedback] == [("judge", 0.5)]


async def test_over_long_source_and_comment_are_invalid_argument_naming_the_field(
    modelrouter_stub,
):
    routed = await _route(modelrouter_stub.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await modelrouter_stub.stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(
                decision_id=routed.decision_id, score=0.5, source="s" * 3_000_000
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in rpc_error_details(raised.value)["BadRequest"].field_violations]
    assert "source" in fields
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await modelrouter_stub.stub.SubmitFeedback(
            pb.SubmitFeedbackRequest(decision_id=routed.decision_id, score=0.5, comment="c" * 5000)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in rpc_error_details(raised.value)["BadRequest"].field_violations]
    assert "comment" in fields


async def test_prompts_are_logged_only_when_operator_opts_in(modelrouter_server_factory, tmp_path):
    config = parse_config(
        TEST_CONFIG
        + f'\n[storage]\nlog = "sqlite"\nsqlite_path = "{tmp_path / "s.db"}"\nlog_prompts = true\n'
    )
    server = await modelrouter_server_factory(config=config)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        routed = await _route(router_pb2_grpc.ModelRouterStub(channel), "hello prompt")
    record = await server.state.decisions.get(routed.decision_id)
    assert record.prompt == "hello prompt"


async def test_feedback_acknowledged_survives_kill_9(tmp_path: Path):
    db = tmp_path / "state.db"
    path = tmp_path / "config.toml"
    path.write_text(
        TEST_CONFIG + f'\n[storage]\nhot = "sqlite"\nlog = "sqlite"\nsqlite_path = "{db}"\n'
    )
    process = _start_process(path)
    try:
        port = _read_port(process)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = router_pb2_grpc.ModelRouterStub(channel)
            routed = await _route(stub)
            await stub.SubmitFeedback(
                pb.SubmitFeedbackRequest(
                    decision_id=routed.decision_id, score=0.7, success=True, comment="fine"
                )
            )
            os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT decision_id, score, comment FROM feedback").fetchall()
        decision = conn.execute("SELECT chosen_model FROM decisions").fetchone()
    assert rows == [(routed.decision_id, 0.7, "fine")]
    assert decision == (routed.selected.model,)


def test_export_feedback_writes_routing_dataset_jsonl(tmp_path: Path):
    import asyncio
    import json

    from modelrouter.state import open_state

    config = parse_config(
        TEST_CONFIG
        + f'\n[storage]\nlog = "sqlite"\nsqlite_path = "{tmp_path / "s.db"}"\nlog_prompts = true\n'
    )

    async def seed() -> str:
        from modelrouter.server import create_server
        from modelrouter.testing import fake_provider_plugin

        server = await create_server(
            config, host="127.0.0.1", port=0, plugins=[fake_provider_plugin], http_port=0
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = router_pb2_grpc.ModelRouterStub(channel)
                routed = await _route(stub, "What is the capital of France?")
                await _route(stub, "no feedback for this one")
                await stub.SubmitFeedback(
                    pb.SubmitFeedbackRequest(
                        decision_id=routed.decision_id, score=1.0, success=True
                    )
                )
                return routed.decision_id
        finally:
            await server.stop(grace=0)

    decision_id = asyncio.run(seed())
    del open_state
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        TEST_CONFIG + f'\n[storage]\nlog = "sqlite"\nsqlite_path = "{tmp_path / "s.db"}"\n'
    )
    out = tmp_path / "feedback.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelrouter.cli",
            "export-feedback",
            "--config",
            str(config_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [line] = out.read_text().splitlines()
    row = json.loads(line)
    assert row["id"] == decision_id
    assert row["prompt"] == "What is the capital of France?"
    assert row["category"] == "qa"
    assert row["scores"] == {"tiny": 1.0}
    assert set(row["costs"]) == {"tiny"} and row["costs"]["tiny"] > 0
