"""Turn a router's predictions into choices across its cost/quality knob.

Two knobs, matching ``modelrouter.Constraints``:

* ``wtp`` (willingness to pay, quality points per USD): pick ``argmax(quality - wtp * cost)``
  over predicted values. The grid of ``wtp`` values is read off the predictions themselves
  (quantiles of the rates at which one model's predicted gain over another pays for its extra
  predicted cost), so any cost scale gets evenly spread operating points.
* ``min_quality``: pick the model with the least predicted cost among those whose predicted
  quality reaches the floor; if none does, the one with the best predicted quality.

Each knob value gives one operating point: the *true* mean cost and quality of the choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SweepResult", "choose_min_quality", "choose_wtp", "sweep", "wtp_grid"]


@dataclass(frozen=True)
class SweepResult:
    """Operating points of one router: knob value, mean cost (USD), mean quality, model shares."""

    knob: str
    values: np.ndarray
    costs: np.ndarray
    qualities: np.ndarray
    #: ``shares[k, j]``: fraction of prompts routed to model j at knob value k.
    shares: np.ndarray


def choose_wtp(pred_quality: np.ndarray, pred_cost: np.ndarray, wtp: float) -> np.ndarray:
    """Index of the chosen model per prompt for one willingness-to-pay."""
    return np.argmax(pred_quality - wtp * pred_cost, axis=1)


def choose_min_quality(pred_quality: np.ndarray, pred_cost: np.ndarray, floor: float) -> np.ndarray:
    """Index of the cheapest model predicted to reach ``floor``, else of the best predicted."""
    eligible = pred_quality >= floor
    cheapest = np.argmin(np.where(eligible, pred_cost, np.inf), axis=1)
    best = np.argmax(pred_quality, axis=1)
    return np.where(eligible.any(axis=1), cheapest, best)


def wtp_grid(pred_quality: np.ndarray, pred_cost: np.ndarray, points: int = 120) -> np.ndarray:
    """Willingness-to-pay values spanning every trade-off present in the predictions."""
    m = pred_quality.shape[1]
    rates: list[np.ndarray] = []
    for i in range(m):
        for j in range(m):
            dq = pred_quality[:, i] - pred_quality[:, j]
            dc = pred_cost[:, i] - pred_cost[:, j]
            ok = (dq > 0) & (dc > 0)
            rates.append(dq[ok] / dc[ok])
    flat = np.concatenate(rates) if rates else np.zeros(0)
    if flat.size == 0:
        return np.array([0.0])
    grid = np.quantile(flat, np.linspace(0.0, 1.0, points))
    # 0 gives the best predicted quality; just under the smallest rate breaks its ties towards
    # cheaper models; past the largest rate everything goes to the cheapest predicted model.
    extremes = np.array([0.0, grid[0] * 0.5, grid[-1] * 2.0])
    return np.unique(np.concatenate([extremes, grid]))


def _points(
    choices: list[np.ndarray],
    quality: np.ndarray,
    cost: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    picked = np.stack(choices)  # (knob values, prompts)
    rows = np.arange(quality.shape[0])[None, :]
    m = quality.shape[1]
    costs = cost[rows, picked].mean(axis=1)
    quals = quality[rows, picked].mean(axis=1)
    shares = (picked[:, :, None] == np.arange(m)).mean(axis=1)
    return costs, quals, shares


def sweep(
    pred_quality: np.ndarray,
    pred_cost: np.ndarray,
    true_quality: np.ndarray,
    true_cost: np.ndarray,
    knob: str = "wtp",
    points: int = 120,
) -> SweepResult:
    """Route every prompt at each knob value and measure the true mean cost and quality."""
    if knob == "wtp":
        values = wtp_grid(pred_quality, pred_cost, points)
        choices = [choose_wtp(pred_quality, pred_cost, float(v)) for v in values]
    elif knob == "min_quality":
        values = np.linspace(0.0, 1.0, points)
        choices = [choose_min_quality(pred_quality, pred_cost, float(v)) for v in values]
    else:
        raise ValueError(f"unknown knob {knob!r}; expected 'wtp' or 'min_quality'")
    costs, quals, shares = _points(choices, true_quality, true_cost)
    return SweepResult(knob, values, costs, quals, shares)
