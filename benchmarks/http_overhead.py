"""Latency the HTTP face adds on top of calling the upstream directly.

The same fixed-delay (20 ms) OpenAI upstream as ``execute_overhead.py`` is called with the
official ``openai`` SDK twice: directly, and through modelrouter's OpenAI-compatible face
(``POST /v1/chat/completions`` with ``model="auto"``: auth off, routing, the budget hold,
the decision log, the provider call and the answer's translation), at concurrency 1 and 16.
Upstream, router and client each run in their own process. The client is identical on
both paths, so the difference is what the face and the pipeline behind it add.

With ``--litellm PATH`` (or ``LITELLM_BIN=PATH``), the same run adds a third path: the
LiteLLM proxy, started here as a subprocess on 127.0.0.1 (one worker, no database, no
master key so auth is off as on the face, telemetry off, ``LITELLM_LOG=ERROR``, the local
model cost map) with a config that maps a model onto the same fake upstream, called by the
same client code. Direct, face and LiteLLM alternate within each round; each figure is
the median over ``--rounds`` of that round's added p50/p99 (path minus direct), and
``ratio`` is ours / LiteLLM's (issue 13's goal: <= 0.2 at c=1 and c=16). Without a
LiteLLM binary the LiteLLM column is skipped with a message. Nothing is installed by this
script; LiteLLM lives in its own venv, never the project's:

    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'

    python benchmarks/http_overhead.py [--requests 400] [--latency-ms 20] [--rounds 3]
        [--litellm /tmp/litellm-venv/bin/litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from execute_overhead import run_router, run_upstream  # the fixed-delay upstream, shared


async def measure(
    call: Callable[[], Awaitable[object]], requests: int, concurrency: int
) -> list[float]:
    """Latencies (ms) of ``requests`` calls with ``concurrency`` in flight."""
    for _ in range(min(20, requests)):  # warm connections and caches
        await call()
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


LITELLM_CONFIG = """\
model_list:
  - model_name: m
    litellm_params:
      model: openai/bench
      api_base: {api_base}
      api_key: sk-bench
litellm_settings:
  telemetry: false
  set_verbose: false
"""


@contextlib.contextmanager
def litellm_proxy(binary: str, upstream_url: str) -> Iterator[str]:
    """Run the LiteLLM proxy for the fake upstream; yields its ``/v1`` base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="litellm-bench-") as workdir:
        config = Path(workdir, "config.yaml")
        config.write_text(LITELLM_CONFIG.format(api_base=upstream_url))
        environ = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "LITELLM_MASTER_KEY", "STORE_MODEL_IN_DB")
        }
        environ |= {
            "LITELLM_LOG": "ERROR",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
            # No key, like the face here (auth off); LiteLLM's local-only opt-in for that.
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        }
        log = Path(workdir, "litellm.log")
        with log.open("wb") as output:
            proxy = subprocess.Popen(
                [binary, "--config", str(config), "--host", "127.0.0.1",
                 "--port", str(port), "--num_workers", "1", "--telemetry", "False"],
                stdout=output, stderr=subprocess.STDOUT, env=environ,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 120
                while True:
                    if proxy.poll() is not None or time.monotonic() > deadline:
                        tail = log.read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"the LiteLLM proxy did not start:\n{tail}")
                    try:
                        url = f"http://127.0.0.1:{port}/health/liveliness"
                        with urllib.request.urlopen(url, timeout=1):
                            break
                    except OSError:
                        time.sleep(0.2)
                yield f"http://127.0.0.1:{port}/v1"
            finally:
                proxy.terminate()
                try:
                    proxy.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proxy.kill()
                    proxy.wait()


def litellm_version(binary: str) -> str:
    python = Path(binary).parent / "python"
    try:
        return subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown version"


async def bench(
    upstream_url: str, face_url: str, litellm_url: str | None, requests: int, rounds: int
) -> None:
    import openai

    messages = [{"role": "user", "content": "hello"}]
    urls = {"direct": (upstream_url, "bench"), "face": (face_url, "auto")}
    if litellm_url is not None:
        urls["litellm"] = (litellm_url, "m")
    clients = {
        name: (openai.AsyncOpenAI(api_key="sk-bench", base_url=url, max_retries=0), model)
        for name, (url, model) in urls.items()
    }

    def caller(name: str) -> Callable[[], Awaitable[object]]:
        client, model = clients[name]
        create = client.chat.completions.create

        async def call() -> object:
            return await create(model=model, messages=messages, max_tokens=16)  # type: ignore[arg-type]

        return call

    calls = {name: caller(name) for name in clients}
    paths = [name for name in clients if name != "direct"]
    header = f"{'c':>3} {'direct p50':>10} {'p99':>7}"
    for name in paths:
        header += f" {name + ' +p50':>13} {'+p99':>8}"
    if litellm_url is not None:
        header += f" {'ratio p50':>9} {'p99':>5}"
    print(header)
    for concurrency in (1, 16):
        n = requests if concurrency == 1 else requests * 4
        per_round: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for round_ in range(rounds):  # alternate the paths to spread drift over all of them
            base = await measure(calls["direct"], n, concurrency)
            b50, b99 = percentile(base, 50), percentile(base, 99)
            per_round["direct"].append((b50, b99))
            spread = f"  round {round_ + 1}: direct {b50:.2f}/{b99:.2f} ms"
            for name in paths:
                through = await measure(calls[name], n, concurrency)
                added = (percentile(through, 50) - b50, percentile(through, 99) - b99)
                per_round[name].append(added)
                spread += f", {name} {added[0]:+.2f}/{added[1]:+.2f}"
            print(spread, flush=True)
        medians = {
            name: tuple(statistics.median(r[i] for r in rows) for i in (0, 1))
            for name, rows in per_round.items()
        }
        line = f"{concurrency:>3} {medians['direct'][0]:>8.2f}ms {medians['direct'][1]:>5.2f}ms"
        for name in paths:
            line += f" {medians[name][0]:>11.2f}ms {medians[name][1]:>6.2f}ms"
        if litellm_url is not None:
            ratio = [medians["face"][i] / medians["litellm"][i] for i in (0, 1)]
            line += f" {ratio[0]:>9.3f} {ratio[1]:>5.3f}"
        print(line, flush=True)
    for client, _ in clients.values():
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="calls per measurement at c=1")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per level")
    parser.add_argument(
        "--litellm",
        default=os.environ.get("LITELLM_BIN"),
        help="the LiteLLM proxy's executable, e.g. /tmp/litellm-venv/bin/litellm "
        "(default: $LITELLM_BIN; without it the LiteLLM column is skipped)",
    )
    args = parser.parse_args()
    litellm = args.litellm
    if not litellm:
        print(
            "LiteLLM: skipped (no --litellm or LITELLM_BIN). To compare, install it in its own "
            "venv: python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install "
            "'litellm[proxy]', then pass --litellm /tmp/litellm-venv/bin/litellm"
        )
    elif not os.access(litellm, os.X_OK):
        print(f"LiteLLM: skipped ({litellm} is not an executable file)")
        litellm = None
    else:
        print(f"LiteLLM: {litellm} ({litellm_version(litellm)})")
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    upstream = context.Process(
        target=run_upstream, args=(args.latency_ms / 1000, ports), daemon=True
    )
    upstream.start()
    upstream_url = f"http://127.0.0.1:{ports.get(timeout=30)}/v1"
    router = context.Process(target=run_router, args=(upstream_url, ports, "", "http"), daemon=True)
    router.start()
    face_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
    from modelrouter import eventloop

    try:
        with contextlib.ExitStack() as stack:
            litellm_url = (
                stack.enter_context(litellm_proxy(litellm, upstream_url)) if litellm else None
            )
            eventloop.run(bench(upstream_url, face_url, litellm_url, args.requests, args.rounds))
    finally:
        router.terminate()
        upstream.terminate()


if __name__ == "__main__":
    main()
