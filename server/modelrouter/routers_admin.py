"""``modelrouter routers ...`` and ``modelrouter retrain``: router versions in the store.

They work on the configured store directly (``--config``, like ``export-feedback``), so
they act on every replica sharing it: replicas pick a change up within
``routers.reload_interval_s``. Exit status: 0 done (``retrain``: promoted, or would be with
``--dry-run``), 2 a usage error (unknown version, nothing to roll back to, no labelled
prompts), 3 ``retrain``'s gate refused the candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .config import Config, load_config
from .learning.registry import RouterPointer, RouterVersion
from .retraining import retrain_once
from .state import open_state
from .state.routers import ArmReport, RouterStore, RouterStoreError, open_router_store

__all__ = ["REFUSED", "add_commands", "run_retrain"]

#: Exit status of ``retrain`` when the gate refuses the candidate.
REFUSED = 3
USAGE_ERROR = 2
T = TypeVar("T")


def add_commands(commands: Any) -> None:
    """Add ``routers`` (list, add, promote, rollback, ab) and ``retrain``."""
    routers = commands.add_parser(
        "routers", help="list, promote, roll back and A/B router versions"
    )
    sub = routers.add_subparsers(dest="routers_command", required=True)

    def parser(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--config", help="TOML configuration naming the store (storage.log)")
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    parser("list", "every stored version, what serves, and per-version decisions and feedback")
    add = parser("add", "store a trained artefact (.npz) as a version")
    add.add_argument("artifact", type=Path)
    add.add_argument("--promote", action="store_true", help="and serve it")
    promote = parser(
        "promote", "serve VERSION on every replica (the current one can be rolled back to)"
    )
    promote.add_argument("version")
    parser("rollback", "serve the version served before the current one again")
    ab = parser("ab", "send a share of requests to a candidate version (A/B)")
    ab.add_argument("version", nargs="?", default="", help="candidate version (omit with --off)")
    ab.add_argument(
        "--share", type=float, default=0.1, help="share of requests, 0..1 (default 0.1)"
    )
    ab.add_argument("--off", action="store_true", help="end the A/B split")
    routers.set_defaults(run=_run_routers)

    retrain = commands.add_parser(
        "retrain",
        help="train a candidate router from logged feedback; promote it unless it is worse",
        description="Read the decision log's labelled prompts (feedback, shadow scores; "
        "needs storage.log_prompts = true), hold back a slice, train a candidate on the rest "
        "(plus --data), compare it with the serving router on the slice (ECE and Brier on the "
        "observed pairs, AIQ where every model is scored; paired bootstrap intervals) and "
        "promote it unless it is worse beyond noise. Exit 0 promoted, 3 refused.",
    )
    retrain.add_argument("--config", help="TOML configuration naming the store (storage.log)")
    retrain.add_argument(
        "--data", type=Path, help="base routing dataset (JSONL[.gz]) to train on too"
    )
    retrain.add_argument("--tenant", help="only this tenant's decisions")
    retrain.add_argument(
        "--holdout", type=float, default=None, help="share held back (default routers.holdout)"
    )
    retrain.add_argument(
        "--seed", type=int, default=0, help="shuffle and bootstrap seed (default 0)"
    )
    retrain.add_argument("--dry-run", action="store_true", help="store and report, do not promote")
    retrain.add_argument("--json", action="store_true", help="print the verdict as JSON")
    retrain.set_defaults(run=_run_retrain)


def _durable(config: Config) -> None:
    if config.state.storage.log == "memory":
        raise RouterStoreError(
            f"{config.source}: storage.log is 'memory': router versions and decisions live "
            "inside each server, out of this command's reach; use 'sqlite' or 'postgres'"
        )


def _with_store(config_path: str | None, work: Callable[[Config, RouterStore], Awaitable[T]]) -> T:
    async def run() -> T:
        config = load_config(config_path)
        _durable(config)
        store = await open_router_store(config)
        try:
            return await work(config, store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _run_routers(args: argparse.Namespace) -> int:
    command = args.routers_command
    try:
        if command == "list":
            return _with_store(args.config, lambda c, s: _list(c, s, args.json))
        if command == "add":
            return _with_store(args.config, lambda c, s: _add(s, args.artifact, args.promote))
        if command == "promote":
            return _with_store(args.config, lambda c, s: _show(s.promote(args.version), args.json))
        if command == "rollback":
            return _with_store(args.config, lambda c, s: _show(s.rollback(), args.json))
        if args.off or not args.version:
            if not args.off:
                return _usage("routers ab: give a candidate VERSION, or --off to end the split")
            return _with_store(args.config, lambda c, s: _show(s.set_candidate("", 0.0), args.json))
        return _with_store(
            args.config, lambda c, s: _show(s.set_candidate(args.version, args.share), args.json)
        )
    except RouterStoreError as error:
        return _usage(str(error))


async def _show(change: Awaitable[RouterPointer], as_json: bool) -> int:
    pointer = await change
    if as_json:
        print(json.dumps(_pointer_json(pointer)))
    else:
        print("\n".join(pointer_lines(pointer)))
    return 0


def _pointer_json(p: RouterPointer) -> dict[str, Any]:
    return {
        "serving": p.serving,
        "history": list(p.history),
        "candidate": p.candidate,
        "share": p.share,
        "updated_at": p.updated_at,
    }


def pointer_lines(p: RouterPointer) -> list[str]:
    lines = [f"serving: {p.serving or '(none: the classifier file artefact serves)'}"]
    if p.history:
        lines.append(f"rollback goes to: {p.history[-1]}")
    if p.candidate:
        lines.append(f"A/B candidate: {p.candidate} on {p.share:.1%} of requests")
    return lines


async def _add(store: RouterStore, path: Path, promote: bool) -> int:
    from .learning.quality_model import QualityModel

    model = QualityModel.load(path)
    version = model.version
    existing = await store.get(version)
    await store.put(
        RouterVersion(
            version,
            time.time(),
            existing.status if existing else "stored",
            notes=f"added from {path.name}",
            metrics=existing.metrics if existing else {},
            artifact=model.to_bytes(),
        )
    )
    print(f"stored version {version} ({len(model.models)} models, embedder {model.embedder})")
    if promote:
        return await _show(store.promote(version), False)
    return 0


async def _shadow_by_version(config: Config) -> dict[str, tuple[int, float]]:
    """Per router version: shadow evaluations of its decisions and the share the judge found
    adequate (the live quality of each A/B arm)."""
    state = await open_state(config)
    try:
        results = await state.shadow.results()
    finally:
        await state.aclose()
    found: dict[str, list[bool]] = {}
    for r in results:
        if r.router_version:
            found.setdefault(r.router_version, []).append(r.adequate)
    return {v: (len(a), sum(a) / len(a)) for v, a in found.items()}


async def _list(config: Config, store: RouterStore, as_json: bool) -> int:
    pointer, versions, arms = await store.pointer(), await store.versions(), await store.arms()
    shadow = await _shadow_by_version(config)
    by_version = {a.version: a for a in arms}
    if as_json:
        print(
            json.dumps(
                {
                    "pointer": _pointer_json(pointer),
                    "versions": [
                        {
                            "version": v.version,
                            "created_at": v.created_at,
                            "status": v.status,
                            "notes": v.notes,
                            "metrics": dict(v.metrics),
                            "arm": _arm_json(by_version.get(v.version), shadow),
                        }
                        for v in versions
                    ],
                    "arms": [_arm_json(a, shadow) for a in arms],
                }
            )
        )
        return 0
    print("\n".join(pointer_lines(pointer)))
    print(
        f"{'version':<18} {'status':<9} {'created (UTC)':<20} {'decisions':>9} "
        f"{'mean cost $':>12} {'feedback':>8} {'score':>6} {'shadow':>6} {'adequate':>8}  notes"
    )
    listed = {v.version for v in versions}
    for v in versions:
        arm = by_version.get(v.version)
        print(_row(v.version, v.status, v.created_at, arm, shadow, v.notes, pointer))
    for arm in arms:  # versions that decided but are not stored (file artefacts)
        if arm.version not in listed:
            notes = "the classifier's file artefact"
            print(_row(arm.version, "file", None, arm, shadow, notes, pointer))
    return 0


def _row(
    version: str,
    status: str,
    created: float | None,
    arm: ArmReport | None,
    shadow: dict[str, tuple[int, float]],
    notes: str,
    pointer: RouterPointer,
) -> str:
    mark = "*" if version == pointer.serving else ("~" if version == pointer.candidate else " ")
    when = (
        ""
        if created is None
        else datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S")
    )
    decisions = arm.decisions if arm else 0
    cost = f"{arm.mean_cost_usd:.6f}" if arm else "-"
    feedback = arm.feedback if arm else 0
    score = f"{arm.mean_score:.3f}" if arm and arm.mean_score is not None else "-"
    judged, adequate = shadow.get(version, (0, None))
    rate = "-" if adequate is None else f"{adequate:.3f}"
    return (
        f"{mark}{version:<17} {status:<9} {when:<20} {decisions:>9} {cost:>12} "
        f"{feedback:>8} {score:>6} {judged:>6} {rate:>8}  {notes}"
    )


def _arm_json(arm: ArmReport | None, shadow: dict[str, tuple[int, float]]) -> dict[str, Any] | None:
    if arm is None:
        return None
    judged, adequate = shadow.get(arm.version, (0, None))
    return {
        "version": arm.version,
        "decisions": arm.decisions,
        "mean_cost_usd": arm.mean_cost_usd,
        "feedback": arm.feedback,
        "mean_score": arm.mean_score,
        "shadow_evaluations": judged,
        "shadow_adequate_rate": adequate,
    }


# --- retrain ----------------------------------------------------------------------------


def _run_retrain(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_retrain(args))
    except (RouterStoreError, ValueError) as error:
        return _usage(f"retrain: {error}")


async def run_retrain(args: argparse.Namespace) -> int:
    """Handler of ``modelrouter retrain``; returns the exit status (see the module)."""
    config = load_config(args.config)
    _durable(config)
    state = await open_state(config)
    try:
        store = await open_router_store(config)
        try:
            outcome = await retrain_once(
                config,
                state,
                store,
                data=args.data,
                holdout=args.holdout,
                seed=args.seed,
                dry_run=args.dry_run,
                tenant=args.tenant,
            )
        finally:
            await store.aclose()
    finally:
        await state.aclose()
    verdict = outcome.verdict
    if args.json:
        print(
            json.dumps(
                {
                    "candidate": outcome.candidate,
                    "serving": outcome.serving,
                    "promoted": outcome.promoted,
                    "verdict": verdict.to_json(),
                }
            )
        )
    else:
        print(
            f"candidate {outcome.candidate} against serving {outcome.serving}: trained on "
            f"{outcome.trained_on} logged and {outcome.base_rows} base prompts, "
            f"{outcome.held_back} held back"
        )
        print("\n".join(verdict.lines()))
        if outcome.promoted:
            print(
                f"promoted {outcome.candidate}: replicas serve it within "
                f"{config.routers.reload_interval_s:g} s"
            )
        elif verdict.promote:
            print("dry run: not promoted")
    return 0 if verdict.promote else REFUSED
