"""CLI commands that work on the configured state directly: ``export-feedback``,
``hash-key``, and running ``serve --workers N``.

(``usage`` and ``feedback`` are client commands and live with the others in ``cli.py``.)

``export-feedback`` reads the configured decision log directly (no server needed) and
writes one routing-dataset JSONL line per decision with feedback, in the format of the
shared routing datasets: ``{"id", "prompt", "category", "scores", "costs"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from .state.export import labelled_lines
from .state.interfaces import DecisionRecord


def add_commands(commands: Any) -> None:
    """Add the commands that work on the configured state directly, without a server."""
    export = commands.add_parser(
        "export-feedback", help="write logged decisions with feedback as routing-dataset JSONL"
    )
    export.add_argument("--config", help="TOML configuration naming the decision log")
    export.add_argument("--out", help="output file (default: standard output)")
    export.add_argument("--tenant", help="only this tenant's decisions")
    export.set_defaults(run=_export)

    explain = commands.add_parser(
        "explain", help="print a logged decision: every candidate, its estimates, the outcome"
    )
    explain.add_argument("decision_id")
    explain.add_argument("--config", help="TOML configuration naming the decision log")
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")
    explain.set_defaults(run=_explain)

    hash_key = commands.add_parser("hash-key", help="print the sha256 to put in [[auth.keys]]")
    hash_key.add_argument("key")
    hash_key.set_defaults(run=lambda args: print(_hash(args.key)))


def _hash(key: str) -> str:
    from .security import hash_key

    return hash_key(key)


async def export_feedback(config_path: str | None, out: TextIO, tenant: str | None = None) -> int:
    from .config import load_config
    from .state import open_state

    state = await open_state(load_config(config_path))
    count = 0
    try:
        async for line in labelled_lines(state, tenant):
            out.write(json.dumps(line) + "\n")
            count += 1
    finally:
        await state.aclose()
    return count


def _export(args: argparse.Namespace) -> int:
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            count = asyncio.run(export_feedback(args.config, out, args.tenant))
    else:
        count = asyncio.run(export_feedback(args.config, sys.stdout, args.tenant))
    print(f"exported {count} labelled decision(s) (feedback, shadow)", file=sys.stderr)
    return 0


async def find_decision(config_path: str | None, decision_id: str) -> DecisionRecord | None:
    from .config import load_config
    from .state import open_state

    state = await open_state(load_config(config_path))
    try:
        return await state.decisions.get(decision_id)
    finally:
        await state.aclose()


def explain_lines(d: DecisionRecord) -> list[str]:
    """A decision, readable: how it was classified, every candidate with its estimates
    (quality is P(adequate) when a calibrated classifier decided), the reason and outcome."""
    lines = [
        f"decision {d.decision_id} ({d.kind}, tenant {d.tenant}, "
        f"{datetime.fromtimestamp(d.created_at, UTC).isoformat(timespec='seconds')})",
        f"classified: {d.complexity} {d.task_type} by {d.classifier}"
        + (f" (router version {d.router_version})" if d.router_version else ""),
        "candidates (in the order they would be tried):",
    ]
    for c in d.candidates:
        if c.excluded:
            continue
        mark = "*" if c.model == d.chosen_model else " "
        lines.append(
            f"  {mark} {c.model:<24} quality {c.quality:.2f}  est. ${c.estimated_cost_usd:.6f}"
            + (f"  ~{c.estimated_latency_ms:.0f} ms" if c.estimated_latency_ms else "")
        )
    excluded = [c for c in d.candidates if c.excluded]
    if excluded:
        lines.append("excluded by the routing rules:")
        lines += [f"    {c.model:<24} {c.excluded}" for c in excluded]
    lines.append(f"reason: {d.reason}")
    if d.explored:
        lines.append("the adaptive policy explored (chose other than its best estimate)")
    actual = "" if d.actual_cost_usd is None else f", actual ${d.actual_cost_usd:.6f}"
    latency = "" if d.latency_ms is None else f", {d.latency_ms:.0f} ms"
    lines.append(f"outcome: {d.outcome}, answered by {d.chosen_model}{actual}{latency}")
    return lines


def _explain(args: argparse.Namespace) -> int:
    decision = asyncio.run(find_decision(args.config, args.decision_id))
    if decision is None:
        print(
            f"error: no decision {args.decision_id!r} in the configured decision log "
            "(a server on memory storage keeps its decisions to itself)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(dataclasses.asdict(decision), indent=2))
    else:
        print("\n".join(explain_lines(decision)))
    return 0


def run_workers(
    workers: int, config_path: str | None, log_level: str, options: dict[str, Any]
) -> int:
    """Run ``workers`` server processes on one port (SO_REUSEPORT); the kernel spreads
    connections across them. They share state only through the configured backends, so
    use redis/postgres (or sqlite on one host) rather than memory. ``options`` go to each
    worker's ``create_server``. Stops them all on SIGTERM or SIGINT."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(config_path, log_level, options), name=f"worker-{i}")
        for i in range(workers)
    ]
    for process in processes:
        process.start()

    def stop(signum: int, frame: object) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.join()
    return max((abs(p.exitcode or 0) for p in processes), default=0)


def _worker(config_path: str | None, log_level: str, options: dict[str, Any]) -> None:
    from . import logsafe
    from .server import serve

    logsafe.configure(log_level, f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s")
    serve(config_path, reuse_port=True, **options)
