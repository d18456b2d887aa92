"""CLI commands of learned routing: ``modelrouter eval`` and ``modelrouter train``.

Both work on routing-dataset files directly, without a server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config.environment import Environment

__all__ = ["add_commands"]

DEFAULT_CACHE = Environment().cache_home() / "modelrouter"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedder",
        default="static:minilm-256",
        help="prompt embedder: 'static:minilm-256' (default: MiniLM distilled into a static "
        "token table, no forward pass; docs/performance.md), 'minilm', 'minilm:TOKENS' or "
        "'hashing:DIM'",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"embedding cache directory (default {DEFAULT_CACHE}); 'none' disables the cache",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="use only the first N prompts of each file"
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``eval`` and ``train`` commands."""
    ev = subparsers.add_parser(
        "eval",
        help="evaluate a router on a routing dataset (AIQ, APGR, CPT, ECE, Brier)",
        description="Train the router on --train (or the first part of --data), sweep its "
        "cost/quality knob on --test, and report AIQ for the router, every single "
        "model, the zero router and the oracle; APGR and CPT for two-model data; ECE and "
        "Brier score of each router's predictions read as P(adequate), per model.",
    )
    ev.add_argument("--train", type=Path, help="training routing dataset (JSONL[.gz])")
    ev.add_argument("--test", type=Path, help="test routing dataset (JSONL[.gz])")
    ev.add_argument(
        "--data", type=Path, help="one dataset to split into train/test instead of --train/--test"
    )
    ev.add_argument(
        "--train-fraction",
        type=float,
        default=0.7,
        help="share of --data used for training (default 0.7)",
    )
    ev.add_argument("--seed", type=int, default=0, help="shuffle seed for --data (default 0)")
    ev.add_argument(
        "--router",
        default="learned",
        help="router(s), comma-separated, from learned, learned-mlp, learned-raw, length, knn; "
        "the first is 'the router' in --json output (default learned)",
    )
    ev.add_argument(
        "--artifact", type=Path, help="use this trained artifact for 'learned' instead of training"
    )
    ev.add_argument(
        "--knob",
        choices=("wtp", "min_quality"),
        default="wtp",
        help="swept knob: willingness to pay (default) or quality floor",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--plot", type=Path, help="write the curves to this PNG file")
    ev.add_argument(
        "--reliability-plot",
        type=Path,
        help="write a reliability diagram of each router's P(adequate) to this PNG file",
    )
    _add_common(ev)
    ev.set_defaults(run=run_eval)

    tr = subparsers.add_parser(
        "train",
        help="train the learned router and write its artifact",
        description="Fit per-model quality and cost predictors on a routing dataset and write "
        "a .npz artifact for the 'learned' classifier.",
    )
    tr.add_argument("--data", type=Path, required=True, help="routing dataset (JSONL[.gz])")
    tr.add_argument("--out", type=Path, required=True, help="artifact path (.npz)")
    tr.add_argument(
        "--c",
        type=float,
        default=None,
        help="inverse L2 regularisation strength (default: the value in 0.01..1 whose router "
        "has the best AIQ on a held-out fifth of the data)",
    )
    tr.add_argument(
        "--calibration",
        choices=("auto", "isotonic", "platt", "none"),
        default="auto",
        help="calibrate P(adequate) per model on a held-out fifth of the data (default "
        "auto: isotonic from 1,000 held-out prompts, else Platt); 'none' fits the heads on "
        "all of it, uncalibrated",
    )
    tr.add_argument(
        "--mlp",
        type=int,
        default=None,
        metavar="HIDDEN",
        help="add a multi-task MLP head with HIDDEN units (needs torch; off by default)",
    )
    _add_common(tr)
    tr.set_defaults(run=run_train)


def _embedder(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .embedders import CachingEmbedder, embedder_from_name

    inner = embedder_from_name(args.embedder)
    if str(args.cache_dir).lower() == "none":
        return inner

    def progress(done: int, total: int) -> None:
        print(f"embedded {done}/{total} new prompts", file=sys.stderr, flush=True)

    return CachingEmbedder(inner, args.cache_dir, progress=progress)


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``modelrouter eval``; returns the exit status."""
    from ..evaluation.dataset import load_dataset, split_dataset
    from ..evaluation.report import evaluate, format_report
    from .quality_model import QualityModel
    from .routers import LearnedRouter, OfflineRouter, make_router

    if args.data is not None:
        if args.train or args.test:
            raise SystemExit("eval: give either --data or --train and --test, not both")
        train, test = split_dataset(
            load_dataset(args.data, args.limit), args.train_fraction, args.seed
        )
    elif args.train and args.test:
        train, test = load_dataset(args.train, args.limit), load_dataset(args.test, args.limit)
    else:
        raise SystemExit("eval: --train and --test (or --data) are required")
    embedder = _embedder(args)
    routers: list[OfflineRouter] = []
    for name in [n.strip() for n in args.router.split(",") if n.strip()]:
        if name == "learned" and args.artifact:
            routers.append(LearnedRouter(embedder, model=QualityModel.load(args.artifact)))
        else:
            routers.append(make_router(name, embedder))
    report = evaluate(train, test, routers, knob=args.knob)
    if args.plot:
        from ..evaluation.plot import plot_report

        source = args.data or args.test
        plot_report(
            report,
            args.plot,
            title=f"{Path(source).name.split('.')[0]}: "
            f"{report.test_prompts} test prompts, knob {report.knob}",
        )
    if args.reliability_plot:
        from ..evaluation.plot import plot_reliability

        source = args.data or args.test
        plot_reliability(
            report,
            args.reliability_plot,
            title=f"{Path(source).name.split('.')[0]}: P(adequate) on "
            f"{report.test_prompts} test prompts",
        )
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_report(report))
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``modelrouter train``; returns the exit status."""
    from ..evaluation.dataset import load_dataset
    from .quality_model import train_quality_model

    data = load_dataset(args.data, args.limit)
    embedder = _embedder(args)
    model = train_quality_model(
        data.prompts,
        embedder.embed(data.prompts),
        data.quality,
        data.cost,
        data.models,
        embedder.name,
        c=args.c,
        calibration=None if args.calibration == "none" else args.calibration,
        mlp_hidden=args.mlp,
    )
    model.meta["source"] = Path(args.data).name
    model.save(args.out)
    print(
        f"wrote {args.out}: version {model.version}, {len(data.models)} models, "
        f"{len(data)} prompts, embedder {embedder.name}, calibration {args.calibration}"
    )
    return 0
