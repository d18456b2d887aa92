"""Retraining a learned router from logged labels, and judging it against the serving one.

Input rows are routing-dataset lines (``{"prompt", "scores": {model: 0..1}, "costs": {model:
USD}}``) in which any model may be missing: ``export-feedback`` lines score the chosen model
only (shadow labels add a reference model). Scores are read for the serving router's models
(the catalog names it was trained on); others are ignored.

* The **logged** rows are shuffled (``seed``) and cut: ``holdout`` of them are held back,
  the rest train the candidate together with every row of an optional **base** routing
  dataset (base rows never enter the held-back slice: the gate judges on real traffic).
* The candidate is one L2 logistic regression per model on the serving router's embedder
  plus length features, fitted on the rows where that model was scored (a missing label is
  masked, not guessed). A model whose labels all agree gets their smoothed rate as a
  constant; one with fewer than ``MIN_LABELS`` labels keeps the serving router's head. Cost
  lines likewise, per model, on the observed costs. The candidate is not
  calibrated: logged labels are too few to spare a calibration slice, and the gate measures
  its calibration (ECE) against the serving router's anyway.
* :func:`~modelrouter.evaluation.gate.compare_partial` compares both on the held-back slice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..evaluation.gate import GateVerdict, compare_partial
from .embedders import Embedder, MissingExtraError
from .quality_model import _CLIP, QualityModel, text_features

__all__ = ["LabelledRows", "RetrainResult", "labelled_rows", "retrain", "train_masked"]

#: Inverse L2 strength of the candidate's heads (no grid: too few labels to choose well).
DEFAULT_C = 1.0
#: Labels (with both outcomes) a model needs before the candidate fits its own head.
MIN_LABELS = 4


@dataclass(frozen=True)
class LabelledRows:
    """Prompts and their (partial) labels; NaN where a model was not scored."""

    prompts: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, idx: np.ndarray) -> LabelledRows:
        return LabelledRows(tuple(self.prompts[i] for i in idx), self.quality[idx], self.cost[idx])

    def join(self, other: LabelledRows) -> LabelledRows:
        return LabelledRows(
            self.prompts + other.prompts,
            np.vstack([self.quality, other.quality]),
            np.vstack([self.cost, other.cost]),
        )


def labelled_rows(lines: Sequence[Mapping[str, Any]], models: Sequence[str]) -> LabelledRows:
    """The lines with a prompt and a score for at least one of ``models``, as arrays."""
    prompts: list[str] = []
    quality: list[list[float]] = []
    cost: list[list[float]] = []
    for line in lines:
        scores, costs = line.get("scores") or {}, line.get("costs") or {}
        prompt = line.get("prompt") or ""
        row = [float(scores[m]) if m in scores else math.nan for m in models]
        if not prompt or all(math.isnan(q) for q in row):
            continue
        prompts.append(str(prompt))
        quality.append(row)
        cost.append([float(costs[m]) if costs.get(m) is not None else math.nan for m in models])
    shape = (len(prompts), len(models))
    return LabelledRows(
        tuple(prompts),
        np.asarray(quality, dtype=np.float64).reshape(shape),
        np.asarray(cost, dtype=np.float64).reshape(shape),
    )


def train_masked(
    rows: LabelledRows, embedder: Embedder, base: QualityModel, c: float = DEFAULT_C
) -> QualityModel:
    """A candidate on ``rows`` (see the module docstring); ``base`` (the serving router)
    gives the models, the embedder, and the heads and cost lines of under-labelled models."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingExtraError("retraining a quality model", exc) from exc
    if embedder.name != base.embedder:
        raise ValueError(
            f"embedder {embedder.name!r} is not the serving router's {base.embedder!r}"
        )
    texts = list(rows.prompts)
    feats = text_features(texts)
    mean, std = feats.mean(axis=0), feats.std(axis=0)
    std[std == 0] = 1.0
    design = np.hstack(
        [embedder.embed(texts).astype(np.float64), np.clip((feats - mean) / std, -_CLIP, _CLIP)]
    )
    models = base.models
    weights = np.zeros((design.shape[1], len(models)))
    bias = np.zeros(len(models))
    cost_coef = np.asarray(base.cost_coef, dtype=np.float64).copy()
    cost_floor = np.asarray(base.cost_floor, dtype=np.float64).copy()
    chars = np.array([len(t) for t in texts], dtype=np.float64)
    own: list[str] = []
    for j in range(len(models)):
        seen = ~np.isnan(rows.quality[:, j])
        y = rows.quality[seen, j] >= 0.5
        if seen.sum() >= MIN_LABELS and 0 < y.sum() < len(y):
            clf = LogisticRegression(C=c, max_iter=1000).fit(design[seen], y)
            weights[:, j], bias[j] = clf.coef_[0], clf.intercept_[0]
            own.append(models[j])
        elif seen.sum() >= MIN_LABELS:
            # One outcome only, common in logged traffic (the router sent this model only
            # the prompts it expected it to pass): its smoothed rate, for every prompt.
            rate = (y.sum() + 1.0) / (len(y) + 2.0)
            bias[j] = math.log(rate / (1.0 - rate))
            own.append(models[j])
        else:
            # Too few labels to learn from: the serving head, re-expressed on this design
            # (the embedding part carries over; length features are standardised anew).
            weights[: base.embedding_dim, j] = base.weights[: base.embedding_dim, j]
            bias[j] = base.bias[j]
        priced = ~np.isnan(rows.cost[:, j])
        if priced.sum() >= 2 and np.ptp(chars[priced]) > 0:
            a = np.stack([np.ones(priced.sum()), chars[priced]], axis=1)
            cost_coef[j], *_ = np.linalg.lstsq(a, rows.cost[priced, j], rcond=None)
            cost_floor[j] = max(float(rows.cost[priced, j].min()), 0.0)
    return QualityModel(
        models=models,
        embedder=base.embedder,
        weights=weights,
        bias=bias,
        feature_mean=mean,
        feature_std=std,
        cost_coef=cost_coef,
        cost_floor=cost_floor,
        meta={"train_prompts": len(texts), "c": c, "own_heads": own, "source": "retrain"},
    )


@dataclass(frozen=True)
class RetrainResult:
    candidate: QualityModel
    verdict: GateVerdict
    #: Logged rows used to train, logged rows held back, base rows added to training.
    trained_on: int
    held_back: int
    base_rows: int


def retrain(
    logged: LabelledRows,
    serving: QualityModel,
    embedder: Embedder,
    *,
    base: LabelledRows | None = None,
    holdout: float = 0.3,
    seed: int = 0,
    c: float = DEFAULT_C,
    **gate: Any,
) -> RetrainResult:
    """Train a candidate on the logged rows (minus a held-back slice) and ``base``, and
    judge it against ``serving`` on the slice. ``gate`` goes to
    :func:`~modelrouter.evaluation.gate.compare_partial` (``resamples``, ``confidence``,
    ``aiq_tolerance``, ``calibration_tolerance``)."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout: expected a fraction in (0, 1), got {holdout}")
    order = np.random.default_rng(seed).permutation(len(logged))
    cut = round(holdout * len(logged))
    if cut < 2 or len(logged) - cut < 2:
        raise ValueError(
            f"{len(logged)} labelled prompts cannot be split {holdout:.0%} held back: need at "
            "least two on each side"
        )
    held, train = logged.take(order[:cut]), logged.take(order[cut:])
    training = train.join(base) if base is not None and len(base) else train
    candidate = train_masked(training, embedder, serving, c)
    vectors = embedder.embed(list(held.prompts))

    def predictions(model: QualityModel) -> tuple[np.ndarray, np.ndarray]:
        return model.predict_quality(vectors, held.prompts), model.predict_cost(held.prompts)

    verdict = compare_partial(
        predictions(serving), predictions(candidate), held.quality, held.cost, seed=seed, **gate
    )
    return RetrainResult(candidate, verdict, len(train), len(held), len(base) if base else 0)
