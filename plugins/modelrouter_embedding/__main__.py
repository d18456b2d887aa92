"""Regenerate ``centroids.npz``: ``python -m modelrouter_embedding`` (needs the learned extra)."""

from __future__ import annotations

from modelrouter_embedding import CENTROIDS_PATH, EmbeddingClassifier

if __name__ == "__main__":
    classifier = EmbeddingClassifier(centroids_path=None)
    classifier.save_centroids(CENTROIDS_PATH)
    print(f"wrote {CENTROIDS_PATH} for embedder {classifier.embedder.name}")
