"""Per-model quality and cost predictors learned from a routing dataset.

Quality: one logistic regression per model on ``[prompt embedding, text features]``,
predicting the probability that the model answers correctly. Cost: per model, a least-squares
line of cost (USD) on prompt length. Inference is plain numpy; training needs scikit-learn.

Artifacts are a single ``.npz`` (no pickled objects, loaded with ``allow_pickle=False``)
holding the weights and a JSON metadata string.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.calibration import Calibrator, fit_calibrator
from .embedders import MissingExtraError

__all__ = [
    "ARTIFACT_FORMAT",
    "QualityModel",
    "mlp_forward",
    "text_features",
    "train_quality_model",
]

ARTIFACT_FORMAT = "modelrouter-quality-model/2"
_ARTIFACT_FORMAT_V1 = "modelrouter-quality-model/1"
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
    """Predicts each model's P(adequate) and expected cost for a prompt.

    Quality heads, averaged when both are present:

    * linear: ``weights`` (``embedding_dim + len(TEXT_FEATURES)``, models) and ``bias``, one
      logistic regression per model; text features are standardised with
      ``feature_mean``/``feature_std`` first;
    * ``mlp`` (optional): ``(w1, b1, w2, b2)``, one hidden GELU layer shared by all models
      (multi-task: what makes a prompt hard for one model informs the others).

    ``calibrators`` (optional, one per model) map the heads' raw probability to a calibrated
    P(adequate); they were fitted on training prompts the heads did not see.
    ``cost_coef[j]`` is (intercept, USD per prompt character) for model ``models[j]``.

    :attr:`version` identifies the artefact's content (a hash of its arrays and settings), so
    two artefacts with the same version predict the same.
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
    mlp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    calibrators: tuple[Calibrator, ...] | None = None

    @property
    def embedding_dim(self) -> int:
        return int(self.weights.shape[0]) - len(TEXT_FEATURES)

    @property
    def calibrated(self) -> bool:
        return self.calibrators is not None

    @property
    def version(self) -> str:
        """Content hash of the artefact (16 hex digits); recorded in the file by :meth:`save`."""
        digest = hashlib.sha256(json.dumps(self._settings(), sort_keys=True).encode())
        for name, array in sorted(self._arrays().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def _design(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        if embeddings.shape != (len(texts), self.embedding_dim):
            raise ValueError(
                f"expected embeddings of shape ({len(texts)}, {self.embedding_dim}) from "
                f"{self.embedder!r}, got {embeddings.shape}"
            )
        feats = (text_features(texts) - self.feature_mean) / self.feature_std
        # Clipped so one prompt far longer than any seen in training cannot swamp the rest.
        return np.hstack([embeddings.astype(np.float64), np.clip(feats, -_CLIP, _CLIP)])

    def predict_raw(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """The heads' probability before calibration, shape ``(len(texts), len(models))``."""
        design = self._design(embeddings, texts)
        prob = _sigmoid(design @ self.weights + self.bias)
        if self.mlp is not None:
            prob = (prob + mlp_forward(self.mlp, design)) / 2.0
        return prob

    def predict_quality(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """P(adequate) in [0, 1] (calibrated when the artefact is), shape (texts, models)."""
        raw = self.predict_raw(embeddings, texts)
        if self.calibrators is None:
            return raw
        return np.stack([cal(raw[:, j]) for j, cal in enumerate(self.calibrators)], axis=1).reshape(
            raw.shape
        )

    def predict_cost(self, texts: Sequence[str]) -> np.ndarray:
        """Expected cost in USD, shape ``(len(texts), len(models))``; never below the floor."""
        chars = np.array([len(t) for t in texts], dtype=np.float64)[:, None]
        cost = self.cost_coef[:, 0][None, :] + chars * self.cost_coef[:, 1][None, :]
        return np.maximum(cost, self.cost_floor[None, :])

    def _settings(self) -> dict[str, object]:
        """Everything in the artefact's metadata that changes predictions."""
        settings: dict[str, object] = {
            "format": ARTIFACT_FORMAT,
            "models": list(self.models),
            "embedder": self.embedder,
            "text_features": list(TEXT_FEATURES),
            "mlp": self.mlp is not None,
        }
        if self.calibrators is not None:
            settings["calibration"] = [c.method for c in self.calibrators]
        return settings

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            "weights": self.weights.astype(np.float32),
            "bias": np.asarray(self.bias, dtype=np.float64),
            "feature_mean": np.asarray(self.feature_mean, dtype=np.float64),
            "feature_std": np.asarray(self.feature_std, dtype=np.float64),
            "cost_coef": np.asarray(self.cost_coef, dtype=np.float64),
            "cost_floor": np.asarray(self.cost_floor, dtype=np.float64),
        }
        if self.mlp is not None:
            for name, array in zip(("mlp_w1", "mlp_b1", "mlp_w2", "mlp_b2"), self.mlp, strict=True):
                arrays[name] = np.asarray(array, dtype=np.float32)
        if self.calibrators is not None:
            for j, cal in enumerate(self.calibrators):
                arrays[f"cal{j}_x"] = np.asarray(cal.knots_x, dtype=np.float64)
                arrays[f"cal{j}_y"] = np.asarray(cal.knots_y, dtype=np.float64)
                arrays[f"cal{j}_params"] = np.asarray(cal.params, dtype=np.float64)
        return arrays

    def save(self, path: str | Path) -> None:
        """Write the artifact atomically to ``path`` (a ``.npz`` file), version included."""
        path = Path(path)
        meta = dict(self.meta, **self._settings(), version=self.version)
        tmp = path.with_name(path.name + ".tmp.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        savez: Any = np.savez_compressed  # numpy's stub types **arrays as its keyword flags
        savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), **self._arrays())
        os.replace(tmp, path)

    def to_bytes(self) -> bytes:
        """The artefact as :meth:`save` writes it, in memory (what the router store keeps)."""
        buffer = io.BytesIO()
        meta = dict(self.meta, **self._settings(), version=self.version)
        savez: Any = np.savez_compressed
        savez(buffer, meta=np.array(json.dumps(meta, sort_keys=True)), **self._arrays())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QualityModel:
        """Read an artefact from :meth:`to_bytes` (checked like :meth:`load`)."""
        return cls.load(io.BytesIO(data))

    @classmethod
    def load(cls, path: str | Path | io.BytesIO) -> QualityModel:
        """Read an artifact written by :meth:`save`; raises ``ValueError`` if it is not one.

        Version-1 artefacts (no calibration, no version) still load. A version-2 artefact whose
        content does not hash to its recorded version (a damaged or hand-edited file) is refused.
        """
        source = path if isinstance(path, io.BytesIO) else Path(path)
        where = "stored artefact" if isinstance(path, io.BytesIO) else str(path)
        with np.load(source, allow_pickle=False) as data:
            try:
                meta = json.loads(str(data["meta"]))
            except KeyError as exc:
                raise ValueError(f"{where}: not a modelrouter quality-model artifact") from exc
            fmt = meta.get("format")
            if fmt not in (ARTIFACT_FORMAT, _ARTIFACT_FORMAT_V1):
                raise ValueError(f"{where}: artifact format {fmt!r}, expected {ARTIFACT_FORMAT!r}")
            mlp = None
            if meta.get("mlp"):
                mlp = tuple(
                    np.asarray(data[n], dtype=np.float64)
                    for n in ("mlp_w1", "mlp_b1", "mlp_w2", "mlp_b2")
                )
            calibrators = None
            methods = meta.get("calibration")
            if methods:
                calibrators = tuple(
                    Calibrator(
                        str(m),
                        np.asarray(data[f"cal{j}_x"]),
                        np.asarray(data[f"cal{j}_y"]),
                        np.asarray(data[f"cal{j}_params"]),
                    )
                    for j, m in enumerate(methods)
                )
            model = cls(
                models=tuple(meta["models"]),
                embedder=str(meta["embedder"]),
                weights=np.asarray(data["weights"], dtype=np.float64),
                bias=np.asarray(data["bias"], dtype=np.float64),
                feature_mean=np.asarray(data["feature_mean"]),
                feature_std=np.asarray(data["feature_std"]),
                cost_coef=np.asarray(data["cost_coef"]),
                cost_floor=np.asarray(data["cost_floor"]),
                meta=meta,
                mlp=mlp,  # type: ignore[arg-type]
                calibrators=calibrators,
            )
        if fmt == ARTIFACT_FORMAT and model.version != meta.get("version"):
            raise ValueError(
                f"{where}: content hashes to version {model.version}, but the file says "
                f"{meta.get('version')!r}: damaged or edited"
            )
        return model


def mlp_forward(
    mlp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], design: np.ndarray
) -> np.ndarray:
    """Probabilities of the multi-task MLP head (GELU, tanh approximation) on ``design``."""
    w1, b1, w2, b2 = mlp
    h = design @ w1 + b1
    h = 0.5 * h * (1.0 + np.tanh(0.7978845608028654 * (h + 0.044715 * h**3)))
    return _sigmoid(h @ w2 + b2)


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


def _fit_mlp(
    design: np.ndarray,
    labels: np.ndarray,
    hidden: int,
    seeds: int = 3,
    epochs: int = 30,
    weight_decay: float = 1e-2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train ``seeds`` multi-task MLPs (torch, CPU) and merge them into one that averages logits.

    Concatenating the hidden layers and averaging the output weights gives exactly the mean
    of the members' logits, so inference stays one small matrix product per layer.
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("training the MLP head", exc) from exc
    x = torch.tensor(design, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.float32)
    parts: list[tuple[np.ndarray, ...]] = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        first = torch.nn.Linear(design.shape[1], hidden)
        last = torch.nn.Linear(hidden, labels.shape[1])
        net = torch.nn.Sequential(
            first, torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(0.2), last
        )
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            net.train()
            for batch in torch.randperm(len(x), generator=gen).split(128):
                opt.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch]), y[batch])
                loss.backward()
                opt.step()
        parts.append(
            tuple(
                t.detach().numpy().astype(np.float64)
                for t in (first.weight.T, first.bias, last.weight.T, last.bias)
            )
        )
    return (
        np.hstack([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.vstack([p[2] for p in parts]) / seeds,
        np.mean([p[3] for p in parts], axis=0),
    )


def _held_out_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[n // 5 :], order[: n // 5]


@dataclass(frozen=True)
class _Selection:
    c: float
    scores: dict[str, float]
    weights: np.ndarray
    bias: np.ndarray
    mlp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None
    held: np.ndarray
    held_raw: np.ndarray


def _choose_c(
    design: np.ndarray,
    labels: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    texts: Sequence[str],
    seed: int,
    mlp_hidden: int | None = None,
    c: float | None = None,
) -> _Selection:
    """The ``C_GRID`` value whose router has the best AIQ on a held-out fifth of the data.

    Selection uses the routing objective itself (area under the cost-quality hull of a
    willingness-to-pay sweep) rather than log-loss: how predictions rank prompts against each
    other's costs matters more to routing than their calibration. With ``c`` given only that
    value is scored. Also returns the chosen heads (fitted on the other four fifths), the
    held-out rows and the heads' raw predictions on them, for calibrators fitted on prompts
    the heads did not see.
    """
    from ..evaluation.metrics import aiq
    from ..evaluation.sweep import sweep

    kept, held = _held_out_split(len(texts), seed)
    kept_texts = [texts[i] for i in kept]
    held_texts = [texts[i] for i in held]
    coef, floor = _fit_cost(kept_texts, cost[kept])
    chars = np.array([len(t) for t in held_texts], dtype=np.float64)[:, None]
    pred_cost = np.maximum(coef[:, 0] + chars * coef[:, 1], floor)
    mlp = _fit_mlp(design[kept], labels[kept], mlp_hidden) if mlp_hidden else None
    mlp_prob = mlp_forward(mlp, design[held]) if mlp is not None else None
    scores: dict[str, float] = {}
    raw: dict[str, np.ndarray] = {}
    heads: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for value in C_GRID if c is None else (c,):
        weights, bias = _fit_weights(design[kept], labels[kept], value)
        pred_quality = _sigmoid(design[held] @ weights + bias)
        if mlp_prob is not None:
            pred_quality = (pred_quality + mlp_prob) / 2.0
        result = sweep(pred_quality, pred_cost, quality[held], cost[held])
        top = max(float(result.costs.max()), float(cost[held].mean(axis=0).max()))
        scores[str(value)] = aiq(result.costs, result.qualities, top)
        raw[str(value)] = pred_quality
        heads[str(value)] = (weights, bias)
    best = max(scores, key=scores.__getitem__)
    return _Selection(float(best), scores, *heads[best], mlp, held, raw[best])


def train_quality_model(
    texts: Sequence[str],
    embeddings: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    models: Sequence[str],
    embedder: str,
    c: float | None = None,
    seed: int = 0,
    calibration: str | None = "auto",
    mlp_hidden: int | None = None,
) -> QualityModel:
    """Fit the quality heads and cost lines, and calibrate P(adequate).

    One L2-regularised logistic regression per model (inverse strength ``c``); with
    ``mlp_hidden`` also a multi-task MLP head with that many hidden units (three seeds), the two
    averaged. With ``c=None`` one strength for all models is chosen from ``C_GRID`` by the
    routing AIQ on a held-out fifth of the training data (shuffled with ``seed``).

    ``calibration`` (``auto``, ``isotonic``, ``platt`` or ``None``; ``auto`` is isotonic with
    at least 1,000 held-out prompts, else Platt): per model, a calibrator is fitted on
    that held-out fifth, mapping the raw prediction of heads trained on the other four fifths
    to the observed adequacy rate, and those heads are kept. With ``calibration=None`` the
    heads are refitted on all the data instead (uncalibrated). ``quality`` is thresholded at
    0.5 into adequate/inadequate. A model that is always (or never) adequate in the training
    data gets a constant prediction.
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
    if mlp_hidden:
        meta["mlp_hidden"] = mlp_hidden
    calibrators: tuple[Calibrator, ...] | None = None
    mlp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    if c is None or calibration is not None:
        sel = _choose_c(design, labels, quality, cost, texts, seed, mlp_hidden, c)
        if c is None:
            meta["c_selection_aiq"] = sel.scores
        c = sel.c
    if calibration is not None:
        # Keep the heads the calibrators were fitted for: refitted on all the data they would
        # be more confident than the held-out predictions the calibration saw.
        calibrators = tuple(
            fit_calibrator(sel.held_raw[:, j], labels[sel.held, j], calibration)
            for j in range(labels.shape[1])
        )
        weights, bias, mlp = sel.weights, sel.bias, sel.mlp
        meta["calibration_prompts"] = len(sel.held)
        meta["head_prompts"] = len(texts) - len(sel.held)
    else:
        weights, bias = _fit_weights(design, labels, c)
        mlp = _fit_mlp(design, labels, mlp_hidden) if mlp_hidden else None
    meta["c"] = c
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
        mlp=mlp,
        calibrators=calibrators,
    )
