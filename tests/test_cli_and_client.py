from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from modelrouter.cli import main
from modelrouter.tokens import estimate_prompt_tokens, estimate_text_tokens
from modelrouter.types import Message, Role
from modelrouter_client import AsyncModelRouterClient, ModelRouterClient, error_details


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_cli_route_json(modelrouter_stub, capsys):
    target = f"127.0.0.1:{modelrouter_stub.server.port}"
    code = await run_cli(
        "route",
        "What is the capital of France?",
        "--target",
        target,
        "--json",
        "--exclude-model",
        "tiny",
    )
    assert code == 0
    output = json.loads(capsys.readouterr().out)
    assert output["selected"]["model"] == "small-coder"
    assert output["classification"]["classifier"] == "rules"


async def test_cli_classify_models_and_plugins_text(modelrouter_stub, capsys):
    target = f"127.0.0.1:{modelrouter_stub.server.port}"
    assert (
        await run_cli("classify", "Prove that there are infinitely many primes", "--target", target)
        == 0
    )
    assert "EXPERT" in capsys.readouterr().out
    assert await run_cli("models", "--target", target) == 0
    assert "small-coder" in capsys.readouterr().out
    assert await run_cli("plugins", "--target", target) == 0
    assert "classifiers: " in capsys.readouterr().out


async def test_cli_reports_server_errors_without_traceback(modelrouter_stub, capsys):
    target = f"127.0.0.1:{modelrouter_stub.server.port}"
    code = await run_cli("route", "hi", "--target", target, "--min-quality", "3")
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: INVALID_ARGUMENT") and "Traceback" not in err


async def test_async_client_wraps_stubs(modelrouter_stub):
    async with AsyncModelRouterClient(f"127.0.0.1:{modelrouter_stub.server.port}") as client:
        decision = await client.route([("system", "Be brief."), ("user", "hello")], min_quality=0.6)
        assert decision.selected.model == "small-coder"
        assert (await client.list_models())[0].name == "tiny"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.get_model("nope")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_sync_client_and_error_details(modelrouter_stub):
    def call():
        with ModelRouterClient(f"127.0.0.1:{modelrouter_stub.server.port}") as client:
            assert client.classify("Translate 'good morning' into French").task_type == 8
            try:
                client.route("hi", max_cost_usd=-1)
            except grpc.RpcError as error:
                return error_details(error)
        raise AssertionError("expected an error")

    details = await asyncio.to_thread(call)
    bad_request = next(d for d in details if type(d).__name__ == "BadRequest")
    assert bad_request.field_violations[0].field == "constraints.max_cost_usd"


def test_token_estimate_is_reasonable_for_prose_and_counts_framing():
    text = "The quick brown fox jumps over the lazy dog."
    assert 9 <= estimate_text_tokens(text) <= 12  # cl100k gives 10
    assert estimate_text_tokens("") == 0
    messages = [Message(Role.SYSTEM, "Be brief."), Message(Role.USER, text)]
    assert (
        estimate_prompt_tokens(messages)
        == estimate_text_tokens("Be brief.") + estimate_text_tokens(text) + 8
    )
