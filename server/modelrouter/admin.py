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
import json
import multiprocessing
import os
import signal
import sys
from typing import Any, TextIO

from .state.interfaces import ExportRow


def add_commands(commands: Any) -> None:
    """Add the commands that work on the configured state directly, without a server."""
    export = commands.add_parser(
        "export-feedback", help="write logged decisions with feedback as routing-dataset JSONL"
    )
    export.add_argument("--config", help="TOML configuration naming the decision log")
    export.add_argument("--out", help="output file (default: standard output)")
    export.add_argument("--tenant", help="only this tenant's decisions")
    export.set_defaults(run=_export)

    hash_key = commands.add_parser("hash-key", help="print the sha256 to put in [[auth.keys]]")
    hash_key.add_argument("key")
    hash_key.set_defaults(run=lambda args: print(_hash(args.key)))


def _hash(key: str) -> str:
    from .security import hash_key

    return hash_key(key)


def export_line(row: ExportRow) -> dict[str, Any]:
    """One routing-dataset line: the chosen model's mean feedback score and its cost."""
    d = row.decision
    scores = [f.score if f.success else 0.0 for f in row.feedback]
    cost = d.actual_cost_usd if d.actual_cost_usd is not None else d.estimated_cost_usd
    return {
        "id": d.decision_id,
        "prompt": d.prompt or "",
        "category": d.task_type.lower(),
        "scores": {d.chosen_model: sum(scores) / len(scores)},
        "costs": {d.chosen_model: cost},
    }


async def export_feedback(config_path: str | None, out: TextIO, tenant: str | None = None) -> int:
    from .config import load_config
    from .state import open_state

    state = await open_state(load_config(config_path))
    count = 0
    try:
        async for row in state.decisions.export(tenant):
            out.write(json.dumps(export_line(row)) + "\n")
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
    print(f"exported {count} decision(s) with feedback", file=sys.stderr)
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
    import logging

    from .server import serve

    logging.basicConfig(
        level=log_level.upper(),
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
    )
    serve(config_path, reuse_port=True, **options)
