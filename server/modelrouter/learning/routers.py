"""Offline routers used by ``modelrouter eval``.

Each router is fitted on a training :class:`RoutingDataset` and then predicts, for every test
prompt, each model's expected quality and cost. Turning predictions into choices (for a
willingness-to-pay or a quality floor) is the same for all of them and lives in
:mod:`modelrouter.evaluation.sweep`.

* ``learned``: :class:`~modelrouter.learning.quality_model.QualityModel` on embeddings
  (``learned-raw``: uncalibrated; ``learned-mlp``: with the multi-task MLP head).
* ``length``: per-model mean quality and cost within prompt-length deciles.
* ``knn``: mean quality and cost of the k most similar training prompts (cosine).
* ``oracle``: the true test quality and cost (an upper bound, not a router).
"""

from __future__ import annotations

import numpy as np

from ..evaluation.dataset import RoutingDataset
from ..evaluation.routers import OfflineRouter, OracleRouter, Predictions
from .embedders import Embedder
from .quality_model import QualityModel, train_quality_model

__all__ = [
    "KnnRouter",
    "LearnedRouter",
    "LengthRouter",
    "OfflineRouter",
    "OracleRouter",
    "Predictions",
    "make_router",
]


class LengthRouter:
    """Baseline: prompt length alone. Per length-quantile bin, each model's mean quality/cost."""

    name = "length"

    def __init__(self, bins: int = 10) -> None:
        self.bins = bins
        self._edges = np.zeros(0)
        self._quality = np.zeros((0, 0))
        self._cost = np.zeros((0, 0))

    @staticmethod
    def _lengths(data: RoutingDataset) -> np.ndarray:
        return np.array([len(p) for p in data.prompts], dtype=np.float64)

    def fit(self, train: RoutingDataset) -> None:
        lengths = self._lengths(train)
        inner = np.quantile(lengths, np.linspace(0, 1, self.bins + 1)[1:-1])
        self._edges = np.unique(inner)
        which = np.searchsorted(self._edges, lengths, side="right")
        n_bins = len(self._edges) + 1
        self._quality = np.zeros((n_bins, len(train.models)))
        self._cost = np.zeros((n_bins, len(train.models)))
        for b in range(n_bins):
            rows = which == b
            source = rows if rows.any() else slice(None)
            self._quality[b] = train.quality[source].mean(axis=0)
            self._cost[b] = train.cost[source].mean(axis=0)

    def predict(self, test: RoutingDataset) -> Predictions:
        which = np.searchsorted(self._edges, self._lengths(test), side="right")
        return Predictions(self._quality[which], self._cost[which])


class KnnRouter:
    """Baseline: mean quality and cost of the ``k`` nearest training prompts by cosine."""

    name = "knn"

    def __init__(self, embedder: Embedder, k: int = 40) -> None:
        self.embedder = embedder
        self.k = k
        self._train: RoutingDataset | None = None
        self._vectors = np.zeros((0, 0), dtype=np.float32)

    def fit(self, train: RoutingDataset) -> None:
        self._train = train
        self._vectors = self.embedder.embed(train.prompts)

    def predict(self, test: RoutingDataset) -> Predictions:
        if self._train is None:
            raise RuntimeError("fit() first")
        queries = self.embedder.embed(test.prompts)
        k = min(self.k, len(self._train))
        quality = np.zeros((len(test), len(test.models)))
        cost = np.zeros_like(quality)
        for start in range(0, len(test), 1024):
            sims = queries[start : start + 1024] @ self._vectors.T
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            quality[start : start + 1024] = self._train.quality[nearest].mean(axis=1)
            cost[start : start + 1024] = self._train.cost[nearest].mean(axis=1)
        return Predictions(quality, cost)


class LearnedRouter:
    """Per-model logistic regression on prompt embeddings plus length features.

    ``model`` may be given pre-trained (e.g. loaded from an artifact); then :meth:`fit` only
    checks that it covers the training data's models.
    """

    name = "learned"

    def __init__(
        self,
        embedder: Embedder,
        c: float | None = None,
        model: QualityModel | None = None,
        calibration: str | None = "auto",
        mlp_hidden: int | None = None,
        name: str = "learned",
    ) -> None:
        self.embedder = embedder
        self.c = c
        self.model = model
        self.calibration = calibration
        self.mlp_hidden = mlp_hidden
        self.name = name

    def fit(self, train: RoutingDataset) -> None:
        if self.model is not None:
            missing = set(train.models) - set(self.model.models)
            if missing:
                raise ValueError(f"artifact lacks models {sorted(missing)}")
            return
        self.model = train_quality_model(
            train.prompts,
            self.embedder.embed(train.prompts),
            train.quality,
            train.cost,
            train.models,
            self.embedder.name,
            c=self.c,
            calibration=self.calibration,
            mlp_hidden=self.mlp_hidden,
        )

    def predict(self, test: RoutingDataset) -> Predictions:
        if self.model is None:
            raise RuntimeError("fit() first")
        quality = self.model.predict_quality(self.embedder.embed(test.prompts), test.prompts)
        cost = self.model.predict_cost(test.prompts)
        order = [self.model.models.index(m) for m in test.models]
        return Predictions(quality[:, order], cost[:, order])


ROUTERS = ("learned", "learned-mlp", "learned-raw", "length", "knn", "oracle")

#: Hidden units of the multi-task MLP head of ``learned-mlp``.
MLP_HIDDEN = 64


def make_router(name: str, embedder: Embedder) -> OfflineRouter:
    """Build a router by name (one of ``ROUTERS``).

    ``learned`` is calibrated (isotonic, or Platt under 1,000 held-out prompts);
    ``learned-raw`` is the same heads refitted on all the training data without calibration;
    ``learned-mlp`` adds the multi-task MLP head.
    """
    if name == "learned":
        return LearnedRouter(embedder)
    if name == "learned-raw":
        return LearnedRouter(embedder, calibration=None, name=name)
    if name == "learned-mlp":
        return LearnedRouter(embedder, mlp_hidden=MLP_HIDDEN, name=name)
    if name == "length":
        return LengthRouter()
    if name == "knn":
        return KnnRouter(embedder)
    if name == "oracle":
        return OracleRouter()
    raise ValueError(f"unknown router {name!r}; known: {', '.join(ROUTERS)}")
