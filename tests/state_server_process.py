"""Run a real server on the test catalog in its own process.

    python -m tests.state_server_process CONFIG


Prints ``PORT <n>`` once serving; runs until killed. Used by the multi-process budget
proof and the kill -9 durability test.
"""

from __future__ import annotations

import asyncio
import sys

from modelrouter.config import load_config
from modelrouter.server import create_server
from modelrouter.testing import fake_provider_plugin


async def main(path: str) -> None:
    server = await create_server(
        load_config(path), host="127.0.0.1", port=0, plugins=[fake_provider_plugin], http_port=0
    )
    print(f"PORT {server.port}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
