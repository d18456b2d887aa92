"""Per-model quality and cost predictors learned from a routing dataset.

Quality: one logistic regression per model on ``[prompt embedding, text features]``,
predicting the probability that the model answers correctly. Cost: per model, a least-squares
line of cost (USD) on prompt length. Inference is plain numpy; training needs scikit-learn.

Artifacts are a single ``.npz`` (no pickled objects, loaded with ``allow_pickle=False``)
holding the weights and a JSON metadata string.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .embedders import MissingExtraError

__all__ = ["ARTIFACT_FORMAT", "QualityModel", "text_features", "train_quality_model"]

ARTIFACT_FORMAT = "modelrouter-quality-model/1"
TEXT_FEATURES = ("log_chars", "log_words", "log_numbers", "log_lines")
_CLIP = 4.0
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def text_features(texts: Sequence[str]) -> np.ndarray:
    """Cheap length features, one row per text, in the order of ``TEXT_FEATURES``."""
    rows = [
        (
            math.log1p(len(t)),
            math.log1p(len(t.split())),
            math.log1p(len(_NUMBER.findall(t))),
            math.log1p(t.count("\n")),
        )
        for t in texts
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), len(TEXT_FEATURES))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@dataclass
class QualityModel:
    """Predicts each model's expected quality and cost for a prompt.

    ``weights`` has shape ``(embedding_dim + len(TEXT_FEATURES), n_models)``; text features
    are standardised with ``feature_mean``/``feature_std`` first. ``cost_coef[j]`` is
    (intercept, USD per prompt character) for model ``models[j]``.
    """

    models: tuple[str, ...]
    embedder: str
    weights: np.ndarray
    bias: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray
    cost_coef: np.ndarray
    cost_floor: np.ndarray
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def embedding_dim(self) -> int:
        return int(self.weights.shape[0]) - len(TEXT_FEATURES)

    def _design(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        if embeddings.shape != (len(texts), self.embedding_dim):
            raise ValueError(
                f"expected embeddings of shape ({len(texts)}, {self.embedding_dim}) from "
                f"{self.embedder!r}, got {embeddings.shape}"
            )
        feats = (text_features(texts) - self.feature_mean) / self.feature_std
        # Clipped so one prompt far longer than any seen in training cannot swamp the rest.
        return np.hstack([embeddings.astype(np.float64), np.clip(feats, -_CLIP, _CLIP)])

    def predict_quality(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Expected quality in [0, 1], shape ``(len(texts), len(models))``."""
        return _sigmoid(self._design(embeddings, texts) @ self.weights + self.bias)

    def predict_cost(self, texts: Sequence[str]) -> np.ndarray:
        """Expected cost in USD, shape ``(len(texts), len(models))``; never below the floor."""
        chars = np.array([len(t) for t in texts], dtype=np.float64)[:, None]
        cost = self.cost_coef[:, 0][None, :] + chars * self.cost_coef[:, 1][None, :]
        return np.maximum(cost, self.cost_floor[None, :])

    def save(self, path: str | Path) -> None:
        """Write the artifact atomically to ``path`` (a ``.npz`` file)."""
        path = Path(path)
        meta = dict(self.meta, format=ARTIFACT_FORMAT, models=list(self.models),
                    embedder=self.embedder, text_features=list(TEXT_FEATURES))
        tmp = path.with_name(path.name + ".tmp.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            tmp,
            meta=np.array(json.dumps(meta, sort_keys=True)),
            weights=self.weights.astype(np.float32),
            bias=self.bias,
            feature_mean=self.feature_mean,
            feature_std=self.feature_std,
            cost_coef=self.cost_coef,
            cost_floor=self.cost_floor,
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> QualityModel:
        """Read an artifact written by :meth:`save`; raises ``ValueError`` if it is not one."""
        with np.load(Path(path), allow_pickle=False) as data:
            try:
                meta = json.loads(str(data["meta"]))
            except KeyError as exc:
                raise ValueError(f"{path}: not a modelrouter quality-model artifact") from exc
            if meta.get("format") != ARTIFACT_FORMAT:
                raise ValueError(f"{path}: artifact format {meta.get('format')!r}, "
                                 f"expected {ARTIFACT_FORMAT!r}")
            return cls(
                models=tuple(meta["models"]),
                embedder=str(meta["embedder"]),
                weights=np.asarray(data["weights"], dtype=np.float64),
                bias=np.asarray(data["bias"], dtype=np.float64),
                feature_mean=np.asarray(data["feature_mean"]),
                feature_std=np.asarray(data["feature_std"]),
                cost_coef=np.asarray(data["cost_coef"]),
                cost_floor=np.asarray(data["cost_floor"]),
                meta=meta,
            )


def _fit_cost(texts: Sequence[str], cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chars = np.array([len(t) for t in texts], dtype=np.float64)
    design = np.stack([np.ones_like(chars), chars], axis=1)
    coef, *_ = np.linalg.lstsq(design, cost, rcond=None)  # (2, n_models)
    floor = np.maximum(cost.min(axis=0), 0.0)
    return coef.T.copy(), floor


C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)


def _choose_c(design: np.ndarray, y: np.ndarray, kept: np.ndarray, held: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    if y[kept].all() or not y[kept].any():
        return 1.0
    losses = []
    for strength in C_GRID:
        clf = LogisticRegression(C=strength, max_iter=1000).fit(design[kept], y[kept])
        p = np.clip(clf.predict_proba(design[held])[:, 1], 1e-6, 1 - 1e-6)
        losses.append(-float(np.mean(y[held] * np.log(p) + (~y[held]) * np.log(1 - p))))
    return C_GRID[int(np.argmin(losses))]


def train_quality_model(
    texts: Sequence[str],
    embeddings: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    models: Sequence[str],
    embedder: str,
    c: float | None = None,
    seed: int = 0,
) -> QualityModel:
    """Fit one L2-regularised logistic regression per model (inverse strength ``c``).

    With ``c=None`` each model's strength is chosen from ``C_GRID`` by log-loss on a held-out
    fifth of the training data (shuffled with ``seed``), then refitted on all of it.
    ``quality`` is thresholded at 0.5 into correct/incorrect. A model that is always (or
    never) correct in the training data gets a constant prediction.
    """
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingExtraError("training a quality model", exc) from exc
    feats = text_features(texts)
    mean, std = feats.mean(axis=0), feats.std(axis=0)
    std[std == 0] = 1.0
    scaled = np.clip((feats - mean) / std, -_CLIP, _CLIP)
    design = np.hstack([embeddings.astype(np.float64), scaled])
    n_models = len(models)
    weights = np.zeros((design.shape[1], n_models))
    bias = np.zeros(n_models)
    labels = quality >= 0.5
    order = np.random.default_rng(seed).permutation(len(texts))
    held, kept = order[: len(texts) // 5], order[len(texts) // 5:]
    chosen: list[float] = []
    for j in range(n_models):
        y = labels[:, j]
        rate = float(y.mean())
        if rate in (0.0, 1.0):
            bias[j] = 40.0 if rate == 1.0 else -40.0
            chosen.append(0.0)
            continue
        strength = c if c is not None else _choose_c(design, y, kept, held)
        chosen.append(strength)
        clf = LogisticRegression(C=strength, max_iter=1000)
        clf.fit(design, y)
        weights[:, j] = clf.coef_[0]
        bias[j] = clf.intercept_[0]
    cost_coef, cost_floor = _fit_cost(texts, cost)
    return QualityModel(
        models=tuple(models),
        embedder=embedder,
        weights=weights,
        bias=bias,
        feature_mean=mean,
        feature_std=std,
        cost_coef=cost_coef,
        cost_floor=cost_floor,
        meta={"train_prompts": len(texts), "c": chosen},
    )
