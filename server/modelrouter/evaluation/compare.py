"""Is a candidate router better than the serving one? Paired bootstrap on held-out prompts.

:func:`compare_routers` is the offline gate of retraining: both routers predict the same
held-out prompts; the prompts are resampled with replacement ``resamples`` times and, on each
resample, both routers are swept and scored (AIQ, and ECE of P(adequate)). Because both see the
same resample, the spread of the *differences* is what decides, not the spread of each score.

The verdict promotes the candidate unless it is worse beyond noise: its AIQ lower than the
serving router's with the whole confidence interval of the difference below
``-aiq_tolerance``, or its ECE higher with the whole interval above ``ece_tolerance``.
Only numpy is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibration import ece
from .dataset import RoutingDataset
from .metrics import aiq
from .sweep import sweep

__all__ = ["Interval", "Verdict", "compare_predictions", "compare_routers"]


@dataclass(frozen=True)
class Interval:
    """A point estimate (on all held-out prompts) and its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Verdict:
    """Outcome of a comparison. ``promote`` is the decision; ``reasons`` say why not.

    ``aiq_delta`` and ``ece_delta`` are candidate minus serving (AIQ: higher is better;
    ECE: lower is better).
    """

    promote: bool
    reasons: tuple[str, ...]
    serving_aiq: Interval
    candidate_aiq: Interval
    aiq_delta: Interval
    serving_ece: Interval
    candidate_ece: Interval
    ece_delta: Interval
    prompts: int
    resamples: int
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "prompts": self.prompts,
            "resamples": self.resamples,
            "confidence": self.confidence,
            **{
                name: getattr(self, name).to_json()
                for name in (
                    "serving_aiq",
                    "candidate_aiq",
                    "aiq_delta",
                    "serving_ece",
                    "candidate_ece",
                    "ece_delta",
                )
            },
        }


def _scores(
    pred_quality: np.ndarray,
    pred_cost: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    max_cost: float,
) -> tuple[float, float]:
    result = sweep(pred_quality, pred_cost, quality, cost)
    return (
        aiq(result.costs, result.qualities, max_cost),
        ece(np.clip(pred_quality, 0.0, 1.0), quality >= 0.5),
    )


def _interval(estimate: float, samples: np.ndarray, confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return Interval(float(estimate), float(low), float(high))


def compare_predictions(
    serving: tuple[np.ndarray, np.ndarray],
    candidate: tuple[np.ndarray, np.ndarray],
    quality: np.ndarray,
    cost: np.ndarray,
    resamples: int = 200,
    confidence: float = 0.95,
    aiq_tolerance: float = 0.0,
    ece_tolerance: float = 0.0,
    seed: int = 0,
) -> Verdict:
    """Compare two routers' (predicted quality, predicted cost) arrays on the same prompts.

    ``quality``/``cost`` are the true values, shape (prompts, models). One ``max_cost`` (the
    largest mean true cost of a model on all prompts) is used for every AIQ so they compare.
    """
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    n = quality.shape[0]
    for name, (q, c) in (("serving", serving), ("candidate", candidate)):
        if q.shape != quality.shape or c.shape != quality.shape:
            raise ValueError(
                f"{name} predictions have shape {q.shape}/{c.shape}, expected {quality.shape}"
            )
    if n < 2:
        raise ValueError("need at least two held-out prompts")
    max_cost = float(cost.mean(axis=0).max())
    s_aiq, s_ece = _scores(*serving, quality, cost, max_cost)
    c_aiq, c_ece = _scores(*candidate, quality, cost, max_cost)
    rng = np.random.default_rng(seed)
    samples = np.zeros((resamples, 4))
    for b in range(resamples):
        idx = rng.integers(0, n, n)
        q, c = quality[idx], cost[idx]
        samples[b, :2] = _scores(serving[0][idx], serving[1][idx], q, c, max_cost)
        samples[b, 2:] = _scores(candidate[0][idx], candidate[1][idx], q, c, max_cost)
    aiq_delta = _interval(c_aiq - s_aiq, samples[:, 2] - samples[:, 0], confidence)
    ece_delta = _interval(c_ece - s_ece, samples[:, 3] - samples[:, 1], confidence)
    reasons: list[str] = []
    if aiq_delta.high < -aiq_tolerance:
        reasons.append(
            f"AIQ worse beyond noise: {aiq_delta.estimate:+.4f} "
            f"({confidence:.0%} CI {aiq_delta.low:+.4f}..{aiq_delta.high:+.4f})"
        )
    if ece_delta.low > ece_tolerance:
        reasons.append(
            f"ECE worse beyond noise: {ece_delta.estimate:+.4f} "
            f"({confidence:.0%} CI {ece_delta.low:+.4f}..{ece_delta.high:+.4f})"
        )
    return Verdict(
        promote=not reasons,
        reasons=tuple(reasons),
        serving_aiq=_interval(s_aiq, samples[:, 0], confidence),
        candidate_aiq=_interval(c_aiq, samples[:, 2], confidence),
        aiq_delta=aiq_delta,
        serving_ece=_interval(s_ece, samples[:, 1], confidence),
        candidate_ece=_interval(c_ece, samples[:, 3], confidence),
        ece_delta=ece_delta,
        prompts=n,
        resamples=resamples,
        confidence=confidence,
    )


def compare_routers(
    serving: Any, candidate: Any, heldout: RoutingDataset, **options: Any
) -> Verdict:
    """Compare two *fitted* routers on ``heldout`` (see :func:`compare_predictions`).

    A router is anything with ``predict(dataset)`` returning an object with ``quality`` and
    ``cost`` arrays in ``heldout.models`` order, such as
    :class:`modelrouter.learning.routers.LearnedRouter`. ``options`` go to
    :func:`compare_predictions` (``resamples``, ``confidence``, tolerances, ``seed``).
    """
    s = serving.predict(heldout)
    c = candidate.predict(heldout)
    return compare_predictions(
        (np.asarray(s.quality), np.asarray(s.cost)),
        (np.asarray(c.quality), np.asarray(c.cost)),
        heldout.quality,
        heldout.cost,
        **options,
    )
