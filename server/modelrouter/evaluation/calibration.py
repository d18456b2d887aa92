"""Calibration of predicted probabilities: ECE, Brier score, reliability curves, calibrators.

A router's per-model prediction is read as P(adequate): the probability that the model's answer
to this prompt is adequate (quality >= 0.5 in the routing datasets). These functions say how
far such probabilities are from observed frequencies, and fit monotone maps that bring them
closer. Only numpy is needed, so a calibrator can live inside a router artefact and be applied
at inference without scikit-learn.

* **ECE** (expected calibration error): predictions are put in ``bins`` equal-width bins of
  [0, 1]; ECE is the mean over predictions of ``|mean prediction - observed rate|`` of their
  bin. 0 is perfect; it cannot see miscalibration that cancels within a bin.
* **Brier score**: the mean of ``(p - y)^2``; it mixes calibration and sharpness (a constant
  base-rate prediction is calibrated but scores ``rate * (1 - rate)``).
* **Calibrators** (``auto`` picks by the size of the calibration set): isotonic
  (pool-adjacent-violators, then linear interpolation between the
  pooled blocks' centres, so the map is continuous and never decreasing) or Platt (a logistic
  regression on the logit of the raw prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ISOTONIC_MIN",
    "Calibrator",
    "ReliabilityCurve",
    "brier",
    "ece",
    "fit_calibrator",
    "fit_isotonic",
    "fit_platt",
    "reliability_curve",
]

_EPS = 1e-6


def _check(prob: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(outcome, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError("predictions and outcomes must be non-empty and of the same size")
    return p, y


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per bin (equal-width on [0, 1]): mean prediction, observed rate, number of predictions.

    Empty bins are left out.
    """

    predicted: np.ndarray
    observed: np.ndarray
    counts: np.ndarray


def reliability_curve(prob: Any, outcome: Any, bins: int = 10) -> ReliabilityCurve:
    """Mean prediction and observed frequency of ``outcome`` (0/1) in each probability bin."""
    p, y = _check(prob, outcome)
    which = np.minimum((np.clip(p, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    sum_p = np.bincount(which, weights=p, minlength=bins)
    sum_y = np.bincount(which, weights=y, minlength=bins)
    keep = counts > 0
    return ReliabilityCurve(
        predicted=sum_p[keep] / counts[keep],
        observed=sum_y[keep] / counts[keep],
        counts=counts[keep],
    )


def ece(prob: Any, outcome: Any, bins: int = 10) -> float:
    """Expected calibration error with ``bins`` equal-width bins (0 is perfectly calibrated)."""
    curve = reliability_curve(prob, outcome, bins)
    total = float(curve.counts.sum())
    return float(np.sum(curve.counts * np.abs(curve.predicted - curve.observed)) / total)


def brier(prob: Any, outcome: Any) -> float:
    """Mean squared difference between prediction and 0/1 outcome (lower is better)."""
    p, y = _check(prob, outcome)
    return float(np.mean((p - y) ** 2))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q / (1.0 - q))


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from a raw prediction to a calibrated probability.

    ``method`` is ``"isotonic"`` (``knots_x`` ascending, ``knots_y`` non-decreasing; linear in
    between, constant beyond the ends), ``"platt"`` (``params`` = (a, b):
    ``sigmoid(a * logit(p) + b)``) or ``"identity"``.
    """

    method: str
    knots_x: np.ndarray
    knots_y: np.ndarray
    params: np.ndarray

    def __call__(self, prob: Any) -> np.ndarray:
        p = np.asarray(prob, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(p, self.knots_x, self.knots_y)
        if self.method == "platt":
            a, b = float(self.params[0]), float(self.params[1])
            z = np.clip(a * _logit(p) + b, -40.0, 40.0)
            return 1.0 / (1.0 + np.exp(-z))
        if self.method == "identity":
            return p.copy()
        raise ValueError(f"unknown calibration method {self.method!r}")

    @classmethod
    def identity(cls) -> Calibrator:
        return cls("identity", np.zeros(0), np.zeros(0), np.zeros(0))


def fit_isotonic(prob: Any, outcome: Any) -> Calibrator:
    """Isotonic regression of ``outcome`` on ``prob`` by pool-adjacent-violators.

    Each pooled block becomes one knot at its mean prediction with its observed rate; between
    knots the map is linear (a step function would send every prediction in a block to one
    value and make ties out of distinct predictions, which the wtp knob needs to separate).
    """
    p, y = _check(prob, outcome)
    order = np.argsort(p, kind="stable")
    xs, ys = p[order], y[order]
    # Blocks as (sum of y, sum of x, count); merge while the previous mean exceeds the new one.
    sum_y: list[float] = []
    sum_x: list[float] = []
    count: list[float] = []
    for xv, yv in zip(xs.tolist(), ys.tolist(), strict=True):
        sy, sx, n = yv, xv, 1.0
        while sum_y and sum_y[-1] / count[-1] >= sy / n:
            sy += sum_y.pop()
            sx += sum_x.pop()
            n += count.pop()
        sum_y.append(sy)
        sum_x.append(sx)
        count.append(n)
    cnt = np.array(count)
    knots_x = np.array(sum_x) / cnt
    knots_y = np.array(sum_y) / cnt
    return Calibrator("isotonic", knots_x, knots_y, np.zeros(0))


def fit_platt(prob: Any, outcome: Any, iterations: int = 50) -> Calibrator:
    """Platt scaling: logistic regression of ``outcome`` on ``logit(prob)`` (damped Newton).

    A tiny ridge (1e-6) keeps the Newton system solvable when the outcomes are all equal.
    """
    p, y = _check(prob, outcome)
    x = _logit(p)

    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    # Start flat (the base rate), where the Hessian is well conditioned; halve steps that do
    # not lower the log-loss (plain Newton overshoots from overconfident starting points).
    rate = float(np.clip(y.mean(), _EPS, 1.0 - _EPS))
    a, b = 0.0, float(np.log(rate / (1.0 - rate)))
    current = loss(a, b)
    for _ in range(iterations):
        z = np.clip(a * x + b, -40.0, 40.0)
        q = 1.0 / (1.0 + np.exp(-z))
        w = q * (1.0 - q)
        grad = np.array([np.sum((q - y) * x), np.sum(q - y)])
        hess = np.array(
            [[np.sum(w * x * x) + 1e-6, np.sum(w * x)], [np.sum(w * x), np.sum(w) + 1e-6]]
        )
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-4 and loss(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2.0
        a, b = a - scale * float(step[0]), b - scale * float(step[1])
        previous, current = current, loss(a, b)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    return Calibrator("platt", np.zeros(0), np.zeros(0), np.array([a, b]))


#: ``auto`` calibration uses isotonic regression from this many calibration predictions on,
#: Platt scaling below (isotonic overfits small sets: Niculescu-Mizil and Caruana, 2005).
ISOTONIC_MIN = 1000


def fit_calibrator(prob: Any, outcome: Any, method: str = "auto") -> Calibrator:
    """Fit a calibrator by name: ``auto``, ``isotonic``, ``platt`` or ``identity``.

    ``auto`` is isotonic with at least ``ISOTONIC_MIN`` predictions, else Platt.
    """
    if method == "auto":
        method = "isotonic" if np.size(prob) >= ISOTONIC_MIN else "platt"
    if method == "isotonic":
        return fit_isotonic(prob, outcome)
    if method == "platt":
        return fit_platt(prob, outcome)
    if method == "identity":
        return Calibrator.identity()
    raise ValueError(
        f"unknown calibration method {method!r}; expected auto, isotonic, platt, identity"
    )
