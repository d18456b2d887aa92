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
    "hi!", "What's the capital of Peru?", "thanks, that helped a lot",
    "Write a haiku about rain.", "Translate 'see you tomorrow' into German.",
    "Can you explain what a hash map is?",
]


def prompts(n: int, seed: int = 0) -> list[str]:
    pool = list(CHAT)
    for name in ("mmlu_pro.jsonl.gz", "gsm8k.jsonl.gz"):
        if (DATA / name).exists():
            pool += list(load_dataset(DATA / name, limit=2000).prompts)
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.integers(len(pool), size=n)]


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
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from modelrouter_embedding import EmbeddingClassifier
    from modelrouter_learned import LearnedClassifier
    from modelrouter_rules import RulesClassifier

    texts = prompts(args.requests)
    rules = RulesClassifier()
    embedding = EmbeddingClassifier()
    learned = LearnedClassifier(args.artifact, task_classifier=embedding)
    results = {
        "rules": summary(measure(rules.classify_sync, texts)),
        "embedding": summary(measure(embedding.classify_sync, texts)),
        "learned": summary(measure(learned.classify_sync, texts)),
    }
    base = results["rules"]["p50_ms"]
    for row in results.values():
        row["p50_ratio_to_rules"] = row["p50_ms"] / base
    if args.json:
        print(json.dumps(results))
        return
    print(f"{len(texts)} requests, mean prompt {np.mean([len(t) for t in texts]):.0f} chars")
    print(f"{'classifier':12s} {'p50 ms':>9s} {'p99 ms':>9s} {'p50 / rules':>12s}")
    for name, row in results.items():
        print(f"{name:12s} {row['p50_ms']:9.3f} {row['p99_ms']:9.3f} "
              f"{row['p50_ratio_to_rules']:12.1f}")


if __name__ == "__main__":
    main()
