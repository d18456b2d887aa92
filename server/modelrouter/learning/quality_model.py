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
        meta = dict(
            self.meta,
            format=ARTIFACT_FORMAT,
            models=list(self.models),
            embedder=self.embedder,
            text_features=list(TEXT_FEATURES),
        )
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
                raise ValueError(
                    f"{path}: artifact format {meta.get('format')!r}, expected {ARTIFACT_FORMAT!r}"
                )
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


#: Inverse regularisation strengths tried when ``c`` is not given.
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def _fit_weights(design: np.ndarray, labels: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per label column; constant columns get a constant prediction."""
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((design.shape[1], labels.shape[1]))
    bias = np.zeros(labels.shape[1])
    for j in range(labels.shape[1]):
        y = labels[:, j]
        if y.all() or not y.any():
            bias[j] = 40.0 if y.all() else -40.0
            continue
        clf = LogisticRegression(C=c, max_iter=1000).fit(design, y)
        weights[:, j] = clf.coef_[0]
        bias[j] = clf.intercept_[0]
    return weights, bias


def _choose_c(
    design: np.ndarray,
    labels: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    texts: Sequence[str],
    seed: int,
) -> tuple[float, dict[str, float]]:
    """The ``C_GRID`` value whose router has the best AIQ on a held-out fifth of the data.

    Selection uses the routing objective itself (area under the cost-quality hull of a
    willingness-to-pay sweep) rather than log-loss: how predictions rank prompts against each
    other's costs matters more to routing than their calibration.
    """
    from ..evaluation.metrics import aiq
    from ..evaluation.sweep import sweep

    order = np.random.default_rng(seed).permutation(len(texts))
    held, kept = order[: len(texts) // 5], order[len(texts) // 5 :]
    kept_texts = [texts[i] for i in kept]
    held_texts = [texts[i] for i in held]
    coef, floor = _fit_cost(kept_texts, cost[kept])
    chars = np.array([len(t) for t in held_texts], dtype=np.float64)[:, None]
    pred_cost = np.maximum(coef[:, 0] + chars * coef[:, 1], floor)
    scores: dict[str, float] = {}
    for c in C_GRID:
        weights, bias = _fit_weights(design[kept], labels[kept], c)
        pred_quality = _sigmoid(design[held] @ weights + bias)
        result = sweep(pred_quality, pred_cost, quality[held], cost[held])
        top = max(float(result.costs.max()), float(cost[held].mean(axis=0).max()))
        scores[str(c)] = aiq(result.costs, result.qualities, top)
    best = max(C_GRID, key=lambda c: scores[str(c)])
    return best, scores


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

    With ``c=None`` one strength for all models is chosen from ``C_GRID`` by the routing AIQ
    on a held-out fifth of the training data (shuffled with ``seed``), then the models are
    refitted on all of it. ``quality`` is thresholded at 0.5 into correct/incorrect. A model
    that is always (or never) correct in the training data gets a constant prediction.
    """
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("training a quality model", exc) from exc
    feats = text_features(texts)
    mean, std = feats.mean(axis=0), feats.std(axis=0)
    std[std == 0] = 1.0
    scaled = np.clip((feats - mean) / std, -_CLIP, _CLIP)
    design = np.hstack([embeddings.astype(np.float64), scaled])
    labels = quality >= 0.5
    meta: dict[str, object] = {"train_prompts": len(texts)}
    if c is None:
        c, meta["c_selection_aiq"] = _choose_c(design, labels, quality, cost, texts, seed)
    meta["c"] = c
    weights, bias = _fit_weights(design, labels, c)
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
        meta=meta,
    )
