"""``modelrouter serve --http-port P`` serves the HTTP face and the dashboard beside gRPC in
one process, on the shipped configuration, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["content-type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read()


def test_serve_http_port_serves_the_face_and_the_dashboard(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "modelrouter.cli", "serve", "--port", "0", "--http-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = get(f"http://127.0.0.1:{port}/v1/models")
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the HTTP face did not come up"
                time.sleep(0.2)
        assert status == 200
        assert json.loads(body)["data"][0]["id"] == "auto"
        status, content_type, page = get(f"http://127.0.0.1:{port}/")
        assert (status, content_type) == (200, "text/html; charset=utf-8")
        assert b"/dashboard/static/dashboard.js" in page
        status, content_type, body = get(f"http://127.0.0.1:{port}/nothing")
        assert (status, content_type) == (404, "application/json")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert f"HTTP face and dashboard on http://127.0.0.1:{port}/" in output
