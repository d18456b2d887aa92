"""The official ``openai`` npm package against the HTTP face: ``node --test`` runs
``tests/node_http/face.test.mjs`` against a real server over a fake OpenAI upstream.

Skipped only when node is missing and MODELROUTER_REQUIRE_SERVICES is not set."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from modelrouter.config import parse_config
from modelrouter.security import hash_key

from .fake_upstreams import (
    Reply,
    Stream,
    openai_completion,
    openai_tool_call_chunks,
    upstream_catalog,
)

NODE_DIR = Path(__file__).parent / "node_http"
CONFIG = """
[auth]
enabled = true
[[auth.keys]]
tenant = "node"
sha256 = "{sha}"
"""


def weather_agent(body: dict[str, Any]) -> Reply | Stream:
    """Calls get_weather when offered tools and the last turn is the user's; else echoes."""
    messages = body["messages"]
    if body.get("tools") and messages[-1]["role"] == "user":
        calls = [("call_1", "get_weather", '{"city": "Paris"}')]
        if body.get("stream"):
            return Stream(openai_tool_call_chunks(calls, model=body["model"]))
        return Reply(body=openai_completion(None, tool_calls=calls, model=body["model"]))
    from .fake_upstreams import _openai_default

    return _openai_default(body)


def node_or_skip() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail("node and npm are required (MODELROUTER_REQUIRE_SERVICES=1)")
        pytest.skip("node is not installed")
    return node


async def run(*command: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=NODE_DIR,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{' '.join(command)} failed:\n{text}"
    return text


async def test_the_openai_npm_package_speaks_to_the_face(
    openai_upstream, modelrouter_server_factory
):
    node = node_or_skip()
    if not (NODE_DIR / "node_modules" / "openai").exists():
        await run("npm", "ci", "--no-audit", "--no-fund")
    openai_upstream.default = weather_agent
    config = upstream_catalog("openai", openai_upstream.base_url) + CONFIG.format(
        sha=hash_key("sk-node")
    )
    server = await modelrouter_server_factory(
        config=parse_config(config), environ={"UP_KEY": "sk-up"}, http_port=-1
    )
    output = await run(
        node,
        "--test",
        env={
            "MODELROUTER_BASE_URL": f"http://127.0.0.1:{server.http.port}/v1",
            "MODELROUTER_API_KEY": "sk-node",
        },
    )
    assert "# fail 0" in output and "# pass 8" in output, output
