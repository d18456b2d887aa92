"""Regenerate the shipped centroids: ``python -m modelrouter_embedding [--static-only]``.

Writes ``centroids_static.npz`` (static embedder) and ``centroids.npz`` (MiniLM; needs torch,
skipped with ``--static-only``). Run it after editing ``examples.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from modelrouter.learning.embedders import Embedder, MiniLMEmbedder, StaticEmbedder
from modelrouter_embedding import CENTROIDS_PATH, STATIC_CENTROIDS_PATH, EmbeddingClassifier

if __name__ == "__main__":
    targets: list[tuple[Callable[[], Embedder], Path]] = [(StaticEmbedder, STATIC_CENTROIDS_PATH)]
    if "--static-only" not in sys.argv[1:]:
        targets.append((MiniLMEmbedder, CENTROIDS_PATH))
    for make, path in targets:
        classifier = EmbeddingClassifier(embedder=make(), centroids_path=None)
        classifier.save_centroids(path)
        print(f"wrote {path} for embedder {classifier.embedder.name}")
