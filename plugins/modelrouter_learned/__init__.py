"""The ``learned`` classifier: per-model quality predicted from the prompt by a trained model.

It loads an artifact written by ``modelrouter train`` (path from the constructor, from
``artifact`` in the ``[classifiers.learned]`` table of the configuration, or from the
``MODELROUTER_LEARNED_ARTIFACT`` environment variable), and reloads it when the file's
modification time changes, so a retrained artifact can be swapped in (write it elsewhere and
rename it over the old one) without a restart.

For each request it embeds the last user turn (in a worker thread) and returns:

* ``predicted_quality``: each artifact model's P(adequate), the probability that its answer
  to this request is adequate; calibrated on held-back training prompts when the artefact
  is (format 2, ``modelrouter train`` by default), so 0.8 means right about 4 times in 5.
  Selection uses it in place of the catalog's static quality for those models;
* ``score``: predicted difficulty, ``1 - mean(predicted quality)``, and ``complexity`` its
  band (SIMPLE < 0.25 <= MODERATE < 0.5 <= COMPLEX < 0.75 <= EXPERT);
* ``task_type``: from the ``embedding`` classifier on the same embedding when the artifact
  uses its embedder, else CHAT;
* ``confidence``: mean decisiveness ``|2p - 1|`` of the per-model predictions;
* ``features``: ``difficulty``, ``calibrated`` (1.0 or 0.0) and ``predicted_cost_usd.<model>``
  per model. :attr:`LearnedClassifier.version` is the serving artefact's content version,
  and ``router_version`` the version that classified this request.

Router versions in the store (``modelrouter routers promote``, ``retrain``) take over from
the file artefact: the server's :class:`~modelrouter.learning.registry.RouterRegistry`
hands them over through :meth:`LearnedClassifier.use_routers`, and an A/B candidate
classifies its share of requests. With no version in the store, the file artefact serves.

Only the first tokens of a prompt are embedded (the window is part of the artefact's embedder
name, e.g. ``minilm:all-MiniLM-L6-v2:128``), which bounds the cost of long prompts.

The hook registers the classifier only when an artifact is configured. A configured artifact
whose embedder needs the ``learned`` extra raises ImportError naming the extra if it is
missing. The artifact's model names must match the catalog's model names to be used.

``mmlu_pro.npz`` beside this file is an example artifact (static MiniLM embedder, trained on
all of the shared MMLU-Pro routing data; see docs/evaluation.md). It names that dataset's 12
models.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modelrouter import (
    Classification,
    Classifier,
    PluginContext,
    RoutingRequest,
    TaskType,
    hookimpl,
)
from modelrouter.config.environment import Environment
from modelrouter.learning.embedders import Embedder, MissingExtraError, embedder_from_name
from modelrouter.learning.quality_model import QualityModel
from modelrouter.learning.registry import ServingRouters
from modelrouter_embedding import EmbeddingClassifier, extra_installed, tier_for_score

__all__ = ["ARTIFACT_ENV", "LearnedClassifier", "register_classifiers"]

ARTIFACT_ENV = "MODELROUTER_LEARNED_ARTIFACT"

logger = logging.getLogger(__name__)


class LearnedClassifier(Classifier):
    """Classifies with a trained :class:`~modelrouter.learning.QualityModel` artifact.

    ``embedder`` overrides the one the artifact names (its ``name`` must match the
    artifact's). ``task_classifier`` is an ``EmbeddingClassifier`` sharing that embedder;
    by default one is built on first use, or pass ``None`` via ``use_task_classifier=False``
    to always report CHAT. The artifact is read in the constructor, so a bad path fails early.
    """

    name = "learned"

    def __init__(
        self,
        artifact_path: str | Path | None = None,
        embedder: Embedder | None = None,
        task_classifier: EmbeddingClassifier | None = None,
        use_task_classifier: bool = True,
    ) -> None:
        path = artifact_path or Environment().get(ARTIFACT_ENV)
        if not path:
            raise ValueError(f"no artifact: pass artifact_path or set {ARTIFACT_ENV}")
        self.path = Path(path)
        self._given_embedder = embedder
        self._task_classifier = task_classifier
        self._use_task_classifier = use_task_classifier
        self._lock = threading.Lock()
        self._mtime_ns: int | None = None
        self.model: QualityModel
        self.embedder: Embedder
        self._file_version = ""
        # Embedders of stored versions trained with another embedder than the file's.
        self._embedders: dict[str, Embedder] = {}
        self._routers = ServingRouters()
        self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            if self._mtime_ns is None:
                raise
            # Mid-swap or removed: keep serving the model already loaded.
            logger.warning("artifact %s unreadable; keeping the loaded model", self.path)
            return
        if mtime == self._mtime_ns:
            return
        with self._lock:
            if mtime == self._mtime_ns:
                return
            model = QualityModel.load(self.path)
            embedder = self._given_embedder
            if embedder is None:
                same = getattr(self, "embedder", None)
                embedder = (
                    same
                    if same is not None and same.name == model.embedder
                    else embedder_from_name(model.embedder)
                )
            if embedder.name != model.embedder:
                raise ValueError(
                    f"{self.path}: artifact was trained with embedder "
                    f"{model.embedder!r}, not {embedder.name!r}"
                )
            self.model, self.embedder, self._mtime_ns = model, embedder, mtime
            self._file_version = model.version

    @property
    def version(self) -> str:
        """Content version of the router serving (the store's when it serves one, else the
        file artefact's); changes when it is retrained or promoted."""
        serving = self._routers.serving
        return serving.version if serving is not None else self._file_version

    def use_routers(self, routers: ServingRouters) -> None:
        """Serve the store's versions (``RouterRegistry`` calls this on every change)."""
        for loaded in (routers.serving, routers.candidate):
            if loaded is not None and loaded.model.embedder != self.embedder.name:
                name = loaded.model.embedder
                if name not in self._embedders:
                    self._embedders[name] = embedder_from_name(name)
        self._routers = routers

    def _embedder_for(self, model: QualityModel) -> Embedder:
        if model.embedder == self.embedder.name:
            return self.embedder
        return self._embedders[model.embedder]

    def _task_for(self, vector: np.ndarray) -> tuple[TaskType, float]:
        if not self._use_task_classifier:
            return TaskType.CHAT, 0.0
        if self._task_classifier is None:
            self._task_classifier = EmbeddingClassifier(embedder=self.embedder)
        clf = self._task_classifier
        if clf.embedder.name != self.embedder.name:
            return TaskType.CHAT, 0.0
        task, prob, _ = clf.task_scores(vector)
        return task, prob

    async def classify(self, request: RoutingRequest) -> Classification:
        return await asyncio.to_thread(self.classify_sync, request)

    def classify_sync(self, request: RoutingRequest) -> Classification:
        """Synchronous :meth:`classify` (embeds on the calling thread)."""
        picked = self._routers.pick(request)
        if picked is None:
            self._reload_if_changed()
            model, embedder, version = self.model, self.embedder, self._file_version
        else:
            model, version = picked.model, picked.version
            embedder = self._embedder_for(model)
        prompt = request.prompt
        vector = embedder.embed([prompt])
        quality = model.predict_quality(vector, [prompt])[0]
        cost = model.predict_cost([prompt])[0]
        difficulty = float(np.clip(1.0 - quality.mean(), 0.0, 1.0))
        task, _ = self._task_for(vector[0]) if embedder is self.embedder else (TaskType.CHAT, 0.0)
        features = {"difficulty": difficulty, "calibrated": 1.0 if model.calibrated else 0.0}
        features.update(
            (f"predicted_cost_usd.{m}", float(c)) for m, c in zip(model.models, cost, strict=True)
        )
        return Classification(
            complexity=tier_for_score(difficulty),
            task_type=task,
            score=difficulty,
            confidence=float(np.mean(np.abs(2.0 * quality - 1.0))),
            classifier=self.name,
            features=features,
            predicted_quality={m: float(q) for m, q in zip(model.models, quality, strict=True)},
            router_version=version,
        )


@hookimpl
def register_classifiers(register: Callable[[Classifier], None], context: PluginContext) -> None:
    artifact = context.options("learned").get("artifact")
    if artifact is not None and not isinstance(artifact, str):
        raise ValueError(f"classifiers.learned.artifact: expected a path, got {artifact!r}")
    path = artifact or Environment().get(ARTIFACT_ENV)
    if not path:
        return
    classifier = LearnedClassifier(path)
    if classifier.embedder.name.startswith("minilm") and not extra_installed():
        raise MissingExtraError(f"the 'learned' classifier (artifact {path})")
    register(classifier)
