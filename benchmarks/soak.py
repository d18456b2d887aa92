"""Soak: minutes of mixed traffic with cancellations; memory and reservations stay flat.

A real server process (``benchmarks/_bench_servers.py router CONFIG``) serves an OpenAI
provider pointed at a fake OpenAI upstream (``tests/fake_upstreams.py``: the real wire
format, streaming included, through the real SDK) running in this process. Workers send
Execute, ExecuteStream, Route, Classify, GetUsage and SubmitFeedback calls; a third of the
executions are cancelled at a random point (before the first delta, mid-stream,
mid-unary) and some run with deadlines too short to finish. Every ``--sample-s`` seconds
the server's RSS (``/proc/PID/status``) and the tenant's reserved USD (GetUsage) are
sampled. At the end both series are printed with their end/start ratio.

Exit status: 1 when RSS grew more than 10% between the end of the warm-up (the first
``--warmup-s`` seconds) and the end, or when reservations are not back to 0 once traffic
stops; else 0.

    python benchmarks/soak.py [--minutes 10] [--workers 24] [--sample-s 5] [--warmup-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_upstreams import (  # noqa: E402
    FakeUpstream,
    Reply,
    Script,
    Stream,
    last_text,
    openai_chunks,
    openai_completion,
)

from modelrouter.v1 import router_pb2 as pb  # noqa: E402
from modelrouter.v1 import router_pb2_grpc  # noqa: E402

CONFIG = """
[http]
port = 0

[routing]
default_classifier = "rules"
default_max_output_tokens = 64

[execution]
request_timeout_s = 10
max_attempts_per_model = 1

[providers.openai]
type = "openai"
api_key_env = "SOAK_OPENAI_KEY"
base_url = "{base_url}"

[[models]]
name = "gpt-4o-mini"
provider = "openai"
input_price_usd_per_mtok = 0.15
output_price_usd_per_mtok = 0.6
context_window_tokens = 128000
typical_latency_ms = 300
quality = 0.7
max_complexity = "expert"
capabilities = ["chat", "code"]

[[models]]
name = "gpt-4o"
provider = "openai"
input_price_usd_per_mtok = 2.5
output_price_usd_per_mtok = 10.0
context_window_tokens = 128000
typical_latency_ms = 800
quality = 0.9
max_complexity = "expert"
capabilities = ["chat", "code"]

[storage]
hot = "sqlite"
log = "sqlite"
sqlite_path = "{db}"

[budgets.default]
day_usd = 1000000.0
"""

PROMPTS = [
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists and explain its complexity.",
    "Summarize the plot of Hamlet in three sentences.",
    "Translate 'good morning, how are you?' into German and Japanese.",
    "東京の天気について短く説明してください。",
    "Prove that the square root of two is irrational, step by step.",
]


def upstream_reply(body: dict[str, Any]) -> Script:
    """Answers of 5-60 words; streams send a word every 2 ms."""
    rng = random.Random(len(last_text(body)))
    words = ["word"] * rng.randint(5, 60)
    if body.get("stream"):
        return Stream(openai_chunks([" " + w for w in words], model=body["model"]), delay_s=0.002)
    return Reply(body=openai_completion(" ".join(words), model=body["model"]), delay_s=0.03)


@dataclass
class Counts:
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, key: str) -> None:
        self.calls[key] = self.calls.get(key, 0) + 1


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def execute(stub: Any, rng: random.Random, counts: Counts) -> str | None:
    messages = [pb.Message(role=pb.ROLE_USER, content=rng.choice(PROMPTS))]
    request = pb.ExecuteRequest(messages=messages)
    roll = rng.random()
    timeout = rng.uniform(0.005, 0.05) if roll < 0.1 else 10.0  # some deadlines too short
    cancel = roll > 2 / 3  # a third cancelled
    if rng.random() < 0.5:
        call = stub.Execute(request, timeout=timeout)
        if cancel:
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            call.cancel()
            counts.add("Execute:cancelled")
            return None
        response = await call
        return str(response.decision_id)
    call = stub.ExecuteStream(request, timeout=timeout)
    stop_after = rng.randint(0, 20)
    read = 0
    decision_id = None
    async for message in call:
        if cancel and read >= stop_after:
            call.cancel()
            counts.add("ExecuteStream:cancelled")
            return None
        read += 1
        if message.HasField("summary"):
            decision_id = message.summary.decision_id
    return decision_id


async def worker(stub: Any, seed: int, stop_at: float, counts: Counts) -> None:
    rng = random.Random(seed)
    decisions: list[str] = []
    while time.monotonic() < stop_at:
        kind = rng.choices(
            ["execute", "route", "classify", "usage", "feedback"], [70, 10, 10, 5, 5]
        )[0]
        try:
            if kind == "execute":
                decision = await execute(stub, rng, counts)
                if decision:
                    decisions = [*decisions[-20:], decision]
            elif kind == "route":
                messages = [pb.Message(role=pb.ROLE_USER, content=rng.choice(PROMPTS))]
                await stub.Route(pb.RouteRequest(messages=messages))
            elif kind == "classify":
                messages = [pb.Message(role=pb.ROLE_USER, content=rng.choice(PROMPTS))]
                await stub.Classify(pb.ClassifyRequest(messages=messages))
            elif kind == "usage":
                await stub.GetUsage(pb.GetUsageRequest())
            elif decisions:
                await stub.SubmitFeedback(
                    pb.SubmitFeedbackRequest(
                        decision_id=rng.choice(decisions), score=rng.random(), success=True
                    )
                )
            counts.add(f"{kind}:ok")
        except grpc.aio.AioRpcError as error:
            counts.add(f"{kind}:{error.code().name}")
        except asyncio.CancelledError:
            counts.add(f"{kind}:cancelled")


async def reserved_usd(stub: Any) -> float:
    usage = await stub.GetUsage(pb.GetUsageRequest())
    return sum(w.reserved_usd for w in usage.windows)


async def soak(args: argparse.Namespace) -> int:
    upstream = FakeUpstream("openai", upstream_reply)
    await upstream.start()
    workdir = Path(tempfile.mkdtemp(prefix="modelrouter-soak-"))
    config = workdir / "soak.toml"
    config.write_text(CONFIG.format(base_url=upstream.base_url, db=workdir / "state.db"))
    env = {**os.environ, "SOAK_OPENAI_KEY": "sk-soak"}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "_bench_servers.py"), "router", str(config)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(await asyncio.to_thread(server.stdout.readline))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = router_pb2_grpc.ModelRouterStub(channel)
        start = time.monotonic()
        stop_at = start + args.minutes * 60
        counts = Counts()
        workers = [
            asyncio.create_task(worker(stub, seed, stop_at, counts)) for seed in range(args.workers)
        ]
        samples: list[tuple[float, int, float]] = []
        while time.monotonic() < stop_at:
            samples.append(
                (time.monotonic() - start, rss_kib(server.pid), await reserved_usd(stub))
            )
            t, rss, held = samples[-1]
            print(f"t={t:6.1f}s rss={rss / 1024:7.1f} MiB reserved=${held:.6f}", flush=True)
            await asyncio.sleep(min(args.sample_s, max(stop_at - time.monotonic(), 0.0)))
        await asyncio.gather(*workers)
        # Traffic stopped: every hold must be settled or released (cancelled calls settle
        # in the background, so give them a moment).
        deadline = time.monotonic() + 15
        left = await reserved_usd(stub)
        while left > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            left = await reserved_usd(stub)
        final_rss = rss_kib(server.pid)
        await channel.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        await upstream.stop()

    after_warmup = [s for s in samples if s[0] >= args.warmup_s] or samples[-1:]
    base_rss = after_warmup[0][1]
    growth = final_rss / base_rss
    print("\nRSS (MiB):      ", " ".join(f"{rss / 1024:.0f}" for _, rss, _ in samples))
    print("reserved (USD): ", " ".join(f"{held:.4f}" for _, _, held in samples))
    print(
        f"RSS after warm-up {base_rss / 1024:.1f} MiB -> end {final_rss / 1024:.1f} MiB "
        f"(ratio {growth:.3f}); first sample {samples[0][1] / 1024:.1f} MiB"
    )
    print(
        f"reserved when traffic stopped: ${left:.6f}; upstream requests: {len(upstream.requests)}"
    )
    print("calls:", dict(sorted(counts.calls.items())))
    failed = []
    if growth > 1.10:
        failed.append(f"RSS grew {100 * (growth - 1):.1f}% after warm-up (limit 10%)")
    if left != 0:
        failed.append(f"${left:.6f} still reserved after traffic stopped")
    for reason in failed:
        print("FAIL:", reason)
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=24)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--warmup-s", type=float, default=60.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
