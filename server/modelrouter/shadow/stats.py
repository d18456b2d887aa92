"""Live routing quality, per answering model and complexity tier, since the server started.

For ``GetStats`` and the dashboard; the same observations go to OpenTelemetry as they
happen (``modelrouter.shadow.*`` instruments), which is where replicas add up.

The live calibration error is the ECE of the router's P(adequate) against the judge's
verdicts: predictions in 10 equal-width bins, the count-weighted mean of |mean prediction
- adequacy rate| per bin (as ``modelrouter eval`` computes it offline).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["BINS", "ShadowQuality", "ShadowStats"]

BINS = 10


@dataclass(slots=True)
class _Cell:
    evaluations: int = 0
    adequate: int = 0
    gap_sum: float = 0.0
    predicted: int = 0
    predicted_sum: float = 0.0
    #: Per P(adequate) bin: [count, sum of predictions, adequate answers].
    bins: list[list[float]] = field(default_factory=lambda: [[0, 0.0, 0] for _ in range(BINS)])


@dataclass(frozen=True, slots=True)
class ShadowQuality:
    model: str
    #: Lower-case tier name (``simple`` ... ``expert``).
    complexity: str
    evaluations: int
    adequacy_rate: float
    #: Mean of (reference score - this model's score); positive: the reference did better.
    quality_gap: float
    #: Evaluations that had a P(adequate); the two figures below count only those.
    calibrated_evaluations: int
    mean_p_adequate: float
    calibration_error: float


class ShadowStats:
    """Kept per tenant, so that a tenant sees only its own figures when auth is on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, str, str], _Cell] = {}
        self._skipped: Counter[tuple[str, str]] = Counter()
        self._cost: dict[str, float] = {}

    def skip(self, tenant: str, reason: str) -> None:
        with self._lock:
            self._skipped[tenant, reason] += 1

    def spent(self, tenant: str, usd: float) -> None:
        with self._lock:
            self._cost[tenant] = self._cost.get(tenant, 0.0) + usd

    def observe(
        self,
        tenant: str,
        model: str,
        complexity: str,
        *,
        adequate: bool,
        gap: float,
        p_adequate: float | None,
    ) -> None:
        with self._lock:
            cell = self._cells.setdefault((tenant, model, complexity), _Cell())
            cell.evaluations += 1
            cell.adequate += adequate
            cell.gap_sum += gap
            if p_adequate is not None:
                cell.predicted += 1
                cell.predicted_sum += p_adequate
                row = cell.bins[min(int(p_adequate * BINS), BINS - 1)]
                row[0] += 1
                row[1] += p_adequate
                row[2] += adequate

    def snapshot(self, tenant: str | None = None) -> list[ShadowQuality]:
        """One entry per (model, tier) observed (for ``tenant``, else all tenants pooled),
        by model then tier."""
        pooled: dict[tuple[str, str], _Cell] = {}
        with self._lock:
            for (owner, model, tier), cell in self._cells.items():
                if tenant is None or owner == tenant:
                    _add(pooled.setdefault((model, tier), _Cell()), cell)
        return [_quality(model, tier, cell) for (model, tier), cell in sorted(pooled.items())]

    def skipped(self, tenant: str | None = None) -> dict[str, int]:
        with self._lock:
            counts: Counter[str] = Counter()
            for (owner, reason), n in self._skipped.items():
                if tenant is None or owner == tenant:
                    counts[reason] += n
            return dict(counts)

    def cost_usd(self, tenant: str | None = None) -> float:
        with self._lock:
            return sum(v for t, v in self._cost.items() if tenant is None or t == tenant)


def _add(into: _Cell, cell: _Cell) -> None:
    into.evaluations += cell.evaluations
    into.adequate += cell.adequate
    into.gap_sum += cell.gap_sum
    into.predicted += cell.predicted
    into.predicted_sum += cell.predicted_sum
    for total, row in zip(into.bins, cell.bins, strict=True):
        for i in range(3):
            total[i] += row[i]


def _quality(model: str, tier: str, cell: _Cell) -> ShadowQuality:
    n = cell.evaluations
    ece = (
        sum(abs(row[1] - row[2]) for row in cell.bins if row[0]) / cell.predicted
        if cell.predicted
        else 0.0
    )
    return ShadowQuality(
        model=model,
        complexity=tier,
        evaluations=n,
        adequacy_rate=cell.adequate / n,
        quality_gap=cell.gap_sum / n,
        calibrated_evaluations=cell.predicted,
        mean_p_adequate=cell.predicted_sum / cell.predicted if cell.predicted else 0.0,
        calibration_error=ece,
    )
