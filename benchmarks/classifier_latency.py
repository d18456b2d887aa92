"""Per-request latency of the ``learned`` and ``embedding`` classifiers vs ``rules``.

Classifies prompts one at a time (as the server does), after a warm-up, and prints p50/p99
in milliseconds and the ratio to the rules classifier. Prompts are a fixed-seed sample of the
shared routing datasets plus short chat turns, so lengths are realistic.

    PYTHONPATH=server:plugins python benchmarks/classifier_latency.py \
        [--artifact plugins/modelrouter_learned/mmlu_pro.npz] [--requests 300]

Needs the ``learned`` extra. Target: p50 under 15 ms on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

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


def prompt_sets(n: int, seed: int = 0) -> dict[str, list[str]]:
    """``n`` prompts per set: short chat turns, GSM8K problems, MMLU-Pro questions."""
    rng = np.random.default_rng(seed)
    pools = {"chat": CHAT}
    for label, name in (("gsm8k", "gsm8k.jsonl.gz"), ("mmlu_pro", "mmlu_pro.jsonl.gz")):
        if (DATA / name).exists():
            pools[label] = list(load_dataset(DATA / name, limit=2000).prompts)
    return {
        label: [pool[i] for i in rng.integers(len(pool), size=n)] for label, pool in pools.items()
    }


def measure(classify: Callable[[RoutingRequest], object], texts: list[str]) -> list[float]:
    requests = [RoutingRequest.from_prompt(t) for t in texts]
    for request in requests[:10]:
        classify(request)  # warm-up: model load, centroids, allocator
    timings = []
    for request in requests:
        start = time.perf_counter()
        classify(request)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    q = statistics.quantiles(timings, n=100)
    return {"p50_ms": statistics.median(timings), "p99_ms": q[98]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--requests", type=int, default=200, help="requests per prompt set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from modelrouter_embedding import EmbeddingClassifier
    from modelrouter_learned import LearnedClassifier
    from modelrouter_rules import RulesClassifier

    rules = RulesClassifier()
    embedding = EmbeddingClassifier()
    learned = LearnedClassifier(args.artifact, task_classifier=embedding)
    classifiers = {
        "rules": rules.classify_sync,
        "embedding": embedding.classify_sync,
        "learned": learned.classify_sync,
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, texts in prompt_sets(args.requests).items():
        rows = {name: summary(measure(fn, texts)) for name, fn in classifiers.items()}
        base = rows["rules"]["p50_ms"]
        for row in rows.values():
            row["p50_ratio_to_rules"] = row["p50_ms"] / base
        rows["prompt_chars"] = {"mean": float(np.mean([len(t) for t in texts]))}
        results[label] = rows
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"{'prompts':9s} {'chars':>6s} {'classifier':10s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'p50/rules':>10s}"
    )
    for label, rows in results.items():
        for name in classifiers:
            row = rows[name]
            print(
                f"{label:9s} {rows['prompt_chars']['mean']:6.0f} {name:10s} "
                f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['p50_ratio_to_rules']:10.0f}"
            )


if __name__ == "__main__":
    main()
