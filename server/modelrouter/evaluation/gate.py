"""The retraining gate on partly labelled prompts: logged feedback scores one model a prompt.

:func:`~.compare.compare_predictions` needs every model's true quality on every held-out
prompt. Feedback gives the chosen model's score only (shadow labels add a reference
model's), so :func:`compare_partial` judges on what was observed:

* **ECE and Brier** on the observed (prompt, model) pairs: P(adequate) against adequacy
  (score >= 0.5). Brier is added to the full-label gate's ECE because on a few pairs ECE alone
  rewards a flat, base-rate predictor; Brier also charges for not telling prompts apart;
* **AIQ** only on the prompts where every model was scored (from a base routing dataset, or
  once shadow labels cover every model), when there are at least ``min_aiq_prompts``.

Intervals come from the same paired bootstrap as the full-label gate: prompts are
resampled with replacement and both routers are scored on each resample, so the interval
of the *difference* decides. The candidate is refused only when it is worse beyond noise
on some metric: the whole AIQ-difference interval below ``-aiq_tolerance``, or the whole
ECE- or Brier-difference interval above ``calibration_tolerance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibration import brier, ece
from .compare import Interval, _interval
from .metrics import aiq
from .sweep import sweep

__all__ = ["Comparison", "GateVerdict", "compare_partial"]


@dataclass(frozen=True)
class Comparison:
    """One metric for both routers and its difference (candidate minus serving)."""

    serving: Interval
    candidate: Interval
    delta: Interval

    def to_json(self) -> dict[str, Any]:
        return {
            "serving": self.serving.to_json(),
            "candidate": self.candidate.to_json(),
            "delta": self.delta.to_json(),
        }


@dataclass(frozen=True)
class GateVerdict:
    """Outcome of :func:`compare_partial`; ``promote`` is the decision, ``reasons`` why not.

    ``metrics`` holds ``ece`` and ``brier`` (lower is better) and, when enough prompts have
    every model scored, ``aiq`` (higher is better).
    """

    promote: bool
    reasons: tuple[str, ...]
    metrics: Mapping[str, Comparison]
    prompts: int
    labelled_pairs: int
    aiq_prompts: int
    resamples: int
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "prompts": self.prompts,
            "labelled_pairs": self.labelled_pairs,
            "aiq_prompts": self.aiq_prompts,
            "resamples": self.resamples,
            "confidence": self.confidence,
            "metrics": {name: c.to_json() for name, c in self.metrics.items()},
        }

    def lines(self) -> list[str]:
        """The verdict, readable: each metric with its interval, then the decision."""
        level = f"{self.confidence:.0%} CI"
        out = [
            f"held-out prompts {self.prompts}, labelled (prompt, model) pairs "
            f"{self.labelled_pairs}, prompts with every model scored {self.aiq_prompts}"
        ]
        for name, c in self.metrics.items():
            better = "higher" if name == "aiq" else "lower"
            out.append(
                f"{name.upper():<6} serving {c.serving.estimate:.4f}  candidate "
                f"{c.candidate.estimate:.4f}  difference {c.delta.estimate:+.4f} "
                f"({level} {c.delta.low:+.4f}..{c.delta.high:+.4f}; {better} is better)"
            )
        if "aiq" not in self.metrics:
            out.append("AIQ not judged: too few held-out prompts with every model scored")
        out.append("verdict: promote" if self.promote else "verdict: refuse")
        out.extend(f"  {reason}" for reason in self.reasons)
        return out


def _calibration(pred: np.ndarray, adequate: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    p = np.clip(pred[mask], 0.0, 1.0)
    y = adequate[mask]
    return ece(p, y), brier(p, y)


def compare_partial(
    serving: tuple[np.ndarray, np.ndarray],
    candidate: tuple[np.ndarray, np.ndarray],
    quality: np.ndarray,
    cost: np.ndarray,
    *,
    resamples: int = 200,
    confidence: float = 0.95,
    aiq_tolerance: float = 0.0,
    calibration_tolerance: float = 0.0,
    min_aiq_prompts: int = 10,
    seed: int = 0,
) -> GateVerdict:
    """Compare two routers' (predicted quality, predicted cost) on partly labelled prompts.

    ``quality`` and ``cost`` have shape (prompts, models) with NaN where the model was not
    scored on the prompt. Raises ``ValueError`` when fewer than two prompts carry a label.
    """
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    for name, (q, c) in (("serving", serving), ("candidate", candidate)):
        if q.shape != quality.shape or c.shape != quality.shape:
            raise ValueError(
                f"{name} predictions have shape {q.shape}/{c.shape}, expected {quality.shape}"
            )
    observed = ~np.isnan(quality)
    labelled = observed.any(axis=1)
    quality, cost, observed = quality[labelled], cost[labelled], observed[labelled]
    serving = (serving[0][labelled], serving[1][labelled])
    candidate = (candidate[0][labelled], candidate[1][labelled])
    n = len(quality)
    if n < 2:
        raise ValueError("need at least two held-out prompts with a score")
    adequate = np.where(observed, quality >= 0.5, False).astype(np.float64)
    full = observed.all(axis=1) & ~np.isnan(cost).any(axis=1)
    judge_aiq = int(full.sum()) >= min_aiq_prompts
    max_cost = float(cost[full].mean(axis=0).max()) if judge_aiq else 0.0

    def scores(idx: np.ndarray) -> np.ndarray:
        """serving ECE, Brier, AIQ, then the candidate's, on the prompts ``idx``."""
        out = np.full(6, np.nan)
        for k, (pq, pc) in enumerate((serving, candidate)):
            out[3 * k : 3 * k + 2] = _calibration(pq[idx], adequate[idx], observed[idx])
            rows = idx[full[idx]]
            if judge_aiq and len(rows) >= 2:
                result = sweep(pq[rows], pc[rows], quality[rows], cost[rows])
                out[3 * k + 2] = aiq(result.costs, result.qualities, max_cost)
        return out

    point = scores(np.arange(n))
    rng = np.random.default_rng(seed)
    samples = np.array([scores(rng.integers(0, n, n)) for _ in range(resamples)])
    metrics: dict[str, Comparison] = {}
    reasons: list[str] = []
    level = f"{confidence:.0%} CI"
    for j, name in enumerate(("ece", "brier", "aiq")):
        if name == "aiq" and not judge_aiq:
            continue
        s, c = samples[:, j], samples[:, 3 + j]
        keep = ~(np.isnan(s) | np.isnan(c))
        comparison = Comparison(
            _interval(point[j], s[keep], confidence),
            _interval(point[3 + j], c[keep], confidence),
            _interval(point[3 + j] - point[j], c[keep] - s[keep], confidence),
        )
        metrics[name] = comparison
        d = comparison.delta
        worse = d.high < -aiq_tolerance if name == "aiq" else d.low > calibration_tolerance
        if worse:
            reasons.append(
                f"{name.upper()} worse beyond noise: {d.estimate:+.4f} "
                f"({level} {d.low:+.4f}..{d.high:+.4f})"
            )
    return GateVerdict(
        promote=not reasons,
        reasons=tuple(reasons),
        metrics=metrics,
        prompts=n,
        labelled_pairs=int(observed.sum()),
        aiq_prompts=int(full.sum()),
        resamples=resamples,
        confidence=confidence,
    )
