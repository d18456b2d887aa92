"""Router quality metrics.

* AIQ (RouterBench, Hu et al. 2024): a router swept over its cost/quality knob gives points
  (mean cost, mean quality). Any two operating points can be mixed at random, so what a router
  can achieve is the *non-decreasing convex hull* of its points. AIQ is the area under that hull
  from its cheapest point to ``max_cost`` (flat after the hull's best point), divided by
  ``max_cost``. Below the cheapest point the router achieves nothing, so that stretch adds zero.
  Compare routers only with the same ``max_cost``.
* APGR and CPT (RouteLLM, Ong et al. 2024), for a strong/weak model pair: PGR is the share of
  the quality gap recovered, ``(q - q_weak) / (q_strong - q_weak)``, as a function of the share
  of calls sent to the strong model. APGR is the area under that curve on [0, 1] (anchored at
  (0, 0) and (1, 1)); CPT(x) is the smallest strong-call share at which PGR reaches ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["aiq", "apgr", "cpt", "pgr_curve", "quality_cost_hull"]

ArrayLike = Sequence[float] | np.ndarray


def quality_cost_hull(costs: ArrayLike, qualities: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the non-decreasing upper convex hull of (cost, quality) points.

    Returns (costs, qualities) sorted by cost with strictly increasing quality: dominated
    points (costlier and no better) and points under a chord between two others are dropped.
    """
    c = np.asarray(costs, dtype=np.float64)
    q = np.asarray(qualities, dtype=np.float64)
    if c.shape != q.shape or c.ndim != 1 or c.size == 0:
        raise ValueError("costs and qualities must be non-empty 1-D arrays of the same length")
    order = np.lexsort((-q, c))  # by cost, then best quality first
    frontier: list[tuple[float, float]] = []
    for i in order:
        if not frontier or q[i] > frontier[-1][1]:
            frontier.append((float(c[i]), float(q[i])))
    hull: list[tuple[float, float]] = []
    for point in frontier:
        while len(hull) >= 2:
            (ox, oy), (ax, ay) = hull[-2], hull[-1]
            cross = (ax - ox) * (point[1] - oy) - (ay - oy) * (point[0] - ox)
            if cross >= 0:  # hull[-1] is on or under the chord hull[-2] -> point
                hull.pop()
            else:
                break
        hull.append(point)
    return np.array([p[0] for p in hull]), np.array([p[1] for p in hull])


def aiq(costs: ArrayLike, qualities: ArrayLike, max_cost: float | None = None) -> float:
    """Average improvement in quality: normalised area under the hull of the points.

    ``max_cost`` defaults to the largest cost among the points; pass the same value for every
    router being compared. The hull is cut at ``max_cost`` if it reaches further.
    """
    hc, hq = quality_cost_hull(costs, qualities)
    top = float(np.max(np.asarray(costs, dtype=np.float64))) if max_cost is None else max_cost
    if top <= 0:
        raise ValueError("max_cost must be positive")
    if hc[0] >= top:
        return 0.0
    if hc[-1] > top:
        q_top = float(np.interp(top, hc, hq))
        keep = hc < top
        hc, hq = np.append(hc[keep], top), np.append(hq[keep], q_top)
    area = float(np.sum((hc[1:] - hc[:-1]) * (hq[1:] + hq[:-1]) / 2.0))
    area += float(hq[-1]) * (top - float(hc[-1]))
    return area / top


def pgr_curve(
    strong_share: ArrayLike, qualities: ArrayLike, q_weak: float, q_strong: float
) -> tuple[np.ndarray, np.ndarray]:
    """(strong-call share, PGR) points sorted by share, anchored at (0, 0) and (1, 1).

    Where several points share a strong-call share the best PGR is kept.
    """
    if q_strong == q_weak:
        raise ValueError("strong and weak model have the same quality; PGR is undefined")
    s = np.asarray(strong_share, dtype=np.float64)
    p = (np.asarray(qualities, dtype=np.float64) - q_weak) / (q_strong - q_weak)
    s = np.concatenate([[0.0], s, [1.0]])
    p = np.concatenate([[0.0], p, [1.0]])
    best: dict[float, float] = {}
    for share, gain in zip(s.tolist(), p.tolist(), strict=True):
        best[share] = max(gain, best.get(share, -np.inf))
    xs = np.array(sorted(best))
    return xs, np.array([best[x] for x in xs])


def apgr(strong_share: ArrayLike, qualities: ArrayLike, q_weak: float, q_strong: float) -> float:
    """Average performance gap recovered: area under PGR over strong-call share in [0, 1]."""
    xs, ps = pgr_curve(strong_share, qualities, q_weak, q_strong)
    return float(np.sum((xs[1:] - xs[:-1]) * (ps[1:] + ps[:-1]) / 2.0))


def cpt(
    strong_share: ArrayLike,
    qualities: ArrayLike,
    q_weak: float,
    q_strong: float,
    target: float,
) -> float:
    """Call-performance threshold: least strong-call share whose PGR reaches ``target``.

    The PGR curve is interpolated linearly between operating points (mixing two routers at
    random achieves that). Returns 1.0 when only sending everything to the strong model does.
    """
    xs, ps = pgr_curve(strong_share, qualities, q_weak, q_strong)
    for i in range(len(xs)):
        if ps[i] >= target:
            if i == 0:
                return float(xs[0])
            x0, x1, p0, p1 = xs[i - 1], xs[i], ps[i - 1], ps[i]
            return float(x0 + (x1 - x0) * (target - p0) / (p1 - p0))
    return 1.0
