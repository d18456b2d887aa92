"""Per-request latency of the ``learned`` and ``embedding`` classifiers vs ``rules``.

Classifies prompts one at a time (as the server does), after a warm-up, and prints p50/p99
in milliseconds and the ratio of each p50 to the rules classifier's in the same round.
Prompt sets: short chat turns, GSM8K problems, MMLU-Pro questions (fixed-seed samples of the
shared routing datasets) and ``1k-token``: MMLU-Pro questions joined until the prompt has
at least 1,000 WordPiece tokens (MiniLM's tokenizer), the issue's case.

Each embedder is measured under both classifiers: ``embedding[static]`` is the nearest-
centroid classifier on the static table distilled from MiniLM (``static:minilm-256``),
``embedding[minilm]`` the same on the MiniLM forward pass; ``learned[NAME]`` serves each
``--artifact`` (the embedder the artefact names). ``... async`` rows time ``await
classify()`` on a running event loop, i.e. with the hop to a worker thread the server pays.

    .venv/bin/python benchmarks/classifier_latency.py [--requests 200] [--rounds 3]
        [--artifact plugins/modelrouter_learned/mmlu_pro.npz ...] [--no-minilm]

Rounds alternate every classifier on the same prompts; the figures are medians over
rounds. Needs the ``learned`` extra. Target (issue 14): p50 <= 5 ms for a 1k-token prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelrouter import RoutingRequest
from modelrouter.evaluation.dataset import load_dataset

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEFAULT_ARTIFACT = ROOT / "plugins" / "modelrouter_learned" / "mmlu_pro.npz"
CHAT = [
    "hi!",
    "What's the capital of Peru?",
    "thanks, that helped a lot",
    "Write a haiku about rain.",
    "Translate 'see you tomorrow' into German.",
    "Can you explain what a hash map is?",
    "Summarize this: the meeting moved to Friday.",
    "Write a Python function that reverses a string.",
    "Why is the sky blue?",
    "Draft a two-line birthday message for my sister.",
    "What does HTTP 404 mean?",
    "Give me three ideas for a weekend trip from Berlin.",
]
LONG_TOKENS = 1000


def _token_count() -> Callable[[str], int]:
    from tokenizers import Tokenizer

    from modelrouter.learning.embedders import _bundled_minilm_path

    tokenizer = Tokenizer.from_file(str(Path(_bundled_minilm_path()) / "tokenizer.json"))
    tokenizer.no_truncation()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def prompt_sets(n: int, seed: int = 0) -> dict[str, list[str]]:
    """``n`` prompts per set: chat turns, GSM8K, MMLU-Pro and 1k-token MMLU-Pro joins."""
    rng = np.random.default_rng(seed)
    pools = {"chat": CHAT}
    for label, name in (("gsm8k", "gsm8k.jsonl.gz"), ("mmlu_pro", "mmlu_pro.jsonl.gz")):
        if (DATA / name).exists():
            pools[label] = list(load_dataset(DATA / name, limit=2000).prompts)
    sets = {
        label: [pool[i] for i in rng.integers(len(pool), size=n)] for label, pool in pools.items()
    }
    if "mmlu_pro" in pools:
        count, pool, long = _token_count(), pools["mmlu_pro"], []
        for _ in range(n):
            parts: list[str] = []
            while count("\n\n".join(parts)) < LONG_TOKENS:
                parts.append(pool[int(rng.integers(len(pool)))])
            long.append("\n\n".join(parts))
        sets["1k-token"] = long
    return sets


def timed(
    classify: Callable[[RoutingRequest], object], requests: list[RoutingRequest]
) -> list[float]:
    timings = []
    for request in requests:
        start = time.perf_counter()
        classify(request)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def _timed_sync(classifier: Any, requests: list[RoutingRequest]) -> list[float]:
    return timed(classifier.classify_sync, requests)


def timed_async(classifier: Any, requests: list[RoutingRequest]) -> list[float]:
    async def run() -> list[float]:
        timings = []
        for request in requests:
            start = time.perf_counter()
            await classifier.classify(request)
            timings.append((time.perf_counter() - start) * 1000.0)
        return timings

    return asyncio.run(run())


def build(args: argparse.Namespace) -> dict[str, Callable[[list[RoutingRequest]], list[float]]]:
    from modelrouter.learning.embedders import MiniLMEmbedder, StaticEmbedder
    from modelrouter_embedding import EmbeddingClassifier
    from modelrouter_learned import LearnedClassifier
    from modelrouter_rules import RulesClassifier

    rules = RulesClassifier()
    static = EmbeddingClassifier(embedder=StaticEmbedder())
    cases: dict[str, Callable[[list[RoutingRequest]], list[float]]] = {
        "rules": lambda rs: timed(rules.classify_sync, rs),
        "embedding[static]": lambda rs: timed(static.classify_sync, rs),
        "embedding[static] async": lambda rs: timed_async(static, rs),
    }
    task_classifiers: dict[str, EmbeddingClassifier] = {static.embedder.name: static}
    if not args.no_minilm:
        minilm = EmbeddingClassifier(embedder=MiniLMEmbedder())
        task_classifiers[minilm.embedder.name] = minilm
        cases["embedding[minilm]"] = lambda rs: timed(minilm.classify_sync, rs)
    for path in args.artifact:
        learned = LearnedClassifier(path)
        name = learned.embedder.name
        if name.startswith("minilm") and args.no_minilm:
            continue
        if name in task_classifiers:  # share the embedder (and its loaded model)
            learned = LearnedClassifier(
                path,
                embedder=task_classifiers[name].embedder,
                task_classifier=task_classifiers[name],
            )
        cases[f"learned[{name}]"] = functools.partial(_timed_sync, learned)
        cases[f"learned[{name}] async"] = functools.partial(timed_async, learned)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, nargs="*", default=[DEFAULT_ARTIFACT])
    parser.add_argument("--requests", type=int, default=200, help="requests per prompt set")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-minilm", action="store_true", help="skip the MiniLM forward pass (slow)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    cases = build(args)
    sets = {
        label: [RoutingRequest.from_prompt(t) for t in texts]
        for label, texts in prompt_sets(args.requests).items()
    }
    for run in cases.values():  # warm-up: model load, centroids, allocator, thread pool
        for requests in sets.values():
            run(requests[:10])
    # label -> case -> per-round (p50, p99, p50 / rules p50)
    rounds: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        label: {case: [] for case in cases} for label in sets
    }
    for _ in range(args.rounds):
        for label, requests in sets.items():
            p50s = {}
            for case, run in cases.items():
                timings = run(requests)
                p50s[case] = (statistics.median(timings), statistics.quantiles(timings, n=100)[98])
            for case, (p50, p99) in p50s.items():
                rounds[label][case].append((p50, p99, p50 / p50s["rules"][0]))
    results: dict[str, dict[str, dict[str, Any]]] = {
        label: {
            case: {
                "p50_ms": statistics.median(r[0] for r in per),
                "p99_ms": statistics.median(r[1] for r in per),
                "p50_ratio_to_rules": statistics.median(r[2] for r in per),
                "p50_ms_per_round": [round(r[0], 3) for r in per],
            }
            for case, per in by_case.items()
        }
        for label, by_case in rounds.items()
    }
    chars = {label: float(np.mean([len(r.prompt) for r in rs])) for label, rs in sets.items()}
    if args.json:
        print(json.dumps({"chars": chars, "results": results}))
        return
    print(
        f"{args.requests} prompts per set, median of {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'prompts':9s} {'chars':>6s} {'classifier':32s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'p50/rules':>10s}  p50 per round"
    )
    for label, by_case in results.items():
        for case, row in by_case.items():
            print(
                f"{label:9s} {chars[label]:6.0f} {case:32s} {row['p50_ms']:8.3f} "
                f"{row['p99_ms']:8.3f} {row['p50_ratio_to_rules']:10.1f}  "
                + ", ".join(f"{v:.3f}" for v in row["p50_ms_per_round"])
            )


if __name__ == "__main__":
    main()
