"""What an offline router is to the evaluation: it fits on a routing dataset and predicts
each model's quality and cost per prompt. The oracle, which knows the answers, bounds
them all. The routers themselves live in :mod:`modelrouter.learning.routers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .dataset import RoutingDataset


@dataclass(frozen=True)
class Predictions:
    """Expected quality (0..1) and cost (USD) per test prompt and model, shape (n, models)."""

    quality: np.ndarray
    cost: np.ndarray


class OfflineRouter(Protocol):
    """A router that can be trained and evaluated on routing datasets."""

    name: str

    def fit(self, train: RoutingDataset) -> None:
        """Learn from ``train`` (a no-op for routers that do not learn)."""

    def predict(self, test: RoutingDataset) -> Predictions:
        """Expected quality and cost of every model on every prompt of ``test``."""


class OracleRouter:
    """Knows the answers: predicts the test set's true quality and cost."""

    name = "oracle"

    def fit(self, train: RoutingDataset) -> None:
        return None

    def predict(self, test: RoutingDataset) -> Predictions:
        return Predictions(test.quality.copy(), test.cost.copy())
