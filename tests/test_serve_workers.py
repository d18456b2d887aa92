"""``modelrouter serve --workers 2``: two processes on one port, stopped together by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT (Linux, macOS)"
)

STARTUP_S = 60.0
STOP_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path) -> Path:
    """The shipped configuration with its SQLite file in ``tmp_path`` and a short grace."""
    text = resources.files("modelrouter").joinpath("default_config.toml").read_text()
    text, replaced = re.subn(
        r"(?m)^sqlite_path = .*$", f'sqlite_path = "{tmp_path / "state.db"}"', text
    )
    assert replaced == 1
    text = re.sub(r"(?m)^grace_period_s = .*$", "grace_period_s = 2", text)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _serving_pids(log: Path, port: int) -> set[int]:
    pattern = re.compile(
        rf"\[(\d+)\] modelrouter\.server: modelrouter serving on 127\.0\.0\.1:{port} "
    )
    return {int(m.group(1)) for m in pattern.finditer(log.read_text())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; it lingers only until the parent (or init) reaps it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return sys.platform != "linux"


def _health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def _wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def test_serve_with_two_workers_shares_one_port_and_stops_both_on_sigterm(tmp_path: Path):
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    serve = f"serve --host 127.0.0.1 --port {port} --workers 2".split()
    command = [sys.executable, "-m", "modelrouter.cli", *serve, "--config", str(_config(tmp_path))]
    with log.open("w") as out:
        parent = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def started_or_failed() -> bool:
        # A worker that fails (to bind, say) logs a traceback; its sibling keeps running.
        text = log.read_text()
        return (
            len(_serving_pids(log, port)) == 2 or parent.poll() is not None or "Traceback" in text
        )

    workers: set[int] = set()
    try:
        _wait_for(started_or_failed, STARTUP_S, "two workers serving")
        workers = _serving_pids(log, port)
        assert parent.poll() is None, log.read_text()
        # Two distinct processes bound the same port (without SO_REUSEPORT the second
        # bind fails), neither of them the supervising parent.
        assert len(workers) == 2 and parent.pid not in workers, log.read_text()
        assert all(_alive(pid) for pid in workers)
        assert _health(port) == health_pb2.HealthCheckResponse.SERVING

        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=STOP_S) == 0, log.read_text()
        _wait_for(lambda: not any(_alive(pid) for pid in workers), 5.0, "workers to exit")
        text = log.read_text()
        for pid in workers:
            assert f"[{pid}] modelrouter.server: stopping: draining" in text
        assert "Traceback" not in text
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)  # our own session: the parent and workers
            parent.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
