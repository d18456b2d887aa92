"""Evaluate routers on a test set and summarise them (AIQ; APGR/CPT for two models)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import brier, ece
from .dataset import RoutingDataset
from .metrics import aiq, apgr, cpt
from .routers import OracleRouter
from .sweep import SweepResult, sweep

__all__ = ["CalibrationScores", "EvalReport", "RouterResult", "evaluate", "format_report"]


@dataclass(frozen=True)
class CalibrationScores:
    """How well a router's predicted qualities work as P(adequate) on the test prompts.

    The outcome is "the model's quality on the prompt is >= 0.5". ``per_model`` maps each model
    to ``{"ece": ..., "brier": ...}``; ``ece``/``brier`` pool all (prompt, model) pairs.
    ``predicted`` is kept (shape (prompts, models)) for reliability plots.
    """

    ece: float
    brier: float
    per_model: dict[str, dict[str, float]]
    predicted: np.ndarray
    outcome: np.ndarray


def calibration_scores(
    predicted: np.ndarray, quality: np.ndarray, models: Sequence[str], bins: int = 10
) -> CalibrationScores:
    """ECE and Brier of ``predicted`` (clipped to [0, 1]) against ``quality >= 0.5``."""
    p = np.clip(np.asarray(predicted, dtype=np.float64), 0.0, 1.0)
    y = (np.asarray(quality) >= 0.5).astype(np.float64)
    per_model = {
        m: {"ece": ece(p[:, j], y[:, j], bins), "brier": brier(p[:, j], y[:, j])}
        for j, m in enumerate(models)
    }
    return CalibrationScores(ece(p, y, bins), brier(p, y), per_model, p, y)


@dataclass(frozen=True)
class RouterResult:
    """One router's sweep and metrics."""

    name: str
    sweep: SweepResult
    aiq: float
    #: APGR, CPT(50%), CPT(80%) when the data has exactly two models.
    pair: dict[str, float] = field(default_factory=dict)
    #: ECE and Brier of the predicted qualities read as P(adequate).
    calibration: CalibrationScores | None = None


@dataclass(frozen=True)
class EvalReport:
    """Everything ``modelrouter eval`` reports. ``routers[0]`` is "the router"."""

    test_prompts: int
    train_prompts: int
    knob: str
    max_cost: float
    models: tuple[str, ...]
    single_cost: np.ndarray
    single_quality: np.ndarray
    single_aiq: dict[str, float]
    zero_aiq: float
    routers: list[RouterResult]
    oracle: RouterResult
    strong: str | None = None
    weak: str | None = None
    #: ECE/Brier of the zero router read as a predictor: each model's training success rate.
    zero_calibration: CalibrationScores | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary: ``aiq`` holds router/zero/oracle and every router and model."""
        first = self.routers[0] if self.routers else self.oracle
        out: dict[str, Any] = {
            "aiq": {
                "router": first.aiq,
                "zero": self.zero_aiq,
                "oracle": self.oracle.aiq,
                "routers": {r.name: r.aiq for r in self.routers},
                "models": self.single_aiq,
            },
            "router": first.name,
            "knob": self.knob,
            "max_cost_usd": self.max_cost,
            "train_prompts": self.train_prompts,
            "test_prompts": self.test_prompts,
            "models": {
                m: {"mean_cost_usd": float(c), "mean_quality": float(q)}
                for m, c, q in zip(self.models, self.single_cost, self.single_quality, strict=True)
            },
            "curves": {
                r.name: {"cost": r.sweep.costs.tolist(), "quality": r.sweep.qualities.tolist()}
                for r in [*self.routers, self.oracle]
            },
        }
        scored = [(r.name, r.calibration) for r in [*self.routers, self.oracle]]
        scored.append(("zero", self.zero_calibration))
        out["calibration"] = {
            name: {"ece": cal.ece, "brier": cal.brier, "models": cal.per_model}
            for name, cal in scored
            if cal is not None
        }
        if self.strong is not None:
            out["pair"] = {
                "strong": self.strong,
                "weak": self.weak,
                **{r.name: r.pair for r in [*self.routers, self.oracle]},
            }
        return out


def _pair_metrics(
    result: SweepResult, strong_index: int, q_weak: float, q_strong: float
) -> dict[str, float]:
    share = result.shares[:, strong_index]
    return {
        "apgr": apgr(share, result.qualities, q_weak, q_strong),
        "cpt50": cpt(share, result.qualities, q_weak, q_strong, 0.5),
        "cpt80": cpt(share, result.qualities, q_weak, q_strong, 0.8),
    }


def evaluate(
    train: RoutingDataset,
    test: RoutingDataset,
    routers: Sequence[Any],
    knob: str = "wtp",
) -> EvalReport:
    """Fit each router on ``train``, sweep it on ``test`` and compute the metrics.

    ``routers`` are :class:`modelrouter.learning.routers.OfflineRouter` objects. AIQ uses one
    ``max_cost`` for all: the largest mean cost any curve or single model reaches.
    """
    if tuple(train.models) != tuple(test.models):
        raise ValueError("train and test data must name the same models in the same order")
    sweeps: list[tuple[str, SweepResult]] = []
    calibrations: list[CalibrationScores] = []
    for router in [*routers, OracleRouter()]:
        router.fit(train)
        pred = router.predict(test)
        sweeps.append((router.name, sweep(pred.quality, pred.cost, test.quality, test.cost, knob)))
        calibrations.append(calibration_scores(pred.quality, test.quality, test.models))
    base_rate = np.tile((train.quality >= 0.5).mean(axis=0), (len(test), 1))
    single_cost = test.cost.mean(axis=0)
    single_quality = test.quality.mean(axis=0)
    max_cost = max(float(single_cost.max()), *(float(s.costs.max()) for _, s in sweeps))
    single_aiq = {
        m: aiq([c], [q], max_cost)
        for m, c, q in zip(test.models, single_cost, single_quality, strict=True)
    }
    zero = aiq(single_cost, single_quality, max_cost)
    strong = weak = None
    s_idx = 0
    if len(test.models) == 2:
        s_idx = int(np.argmax(single_quality))
        strong, weak = test.models[s_idx], test.models[1 - s_idx]
    results = []
    for (name, result), cal in zip(sweeps, calibrations, strict=True):
        pair = (
            _pair_metrics(
                result, s_idx, float(single_quality[1 - s_idx]), float(single_quality[s_idx])
            )
            if strong
            else {}
        )
        results.append(
            RouterResult(name, result, aiq(result.costs, result.qualities, max_cost), pair, cal)
        )
    return EvalReport(
        test_prompts=len(test),
        train_prompts=len(train),
        knob=knob,
        max_cost=max_cost,
        models=test.models,
        single_cost=single_cost,
        single_quality=single_quality,
        single_aiq=single_aiq,
        zero_aiq=zero,
        routers=results[:-1],
        oracle=results[-1],
        strong=strong,
        weak=weak,
        zero_calibration=calibration_scores(base_rate, test.quality, test.models),
    )


def format_report(report: EvalReport) -> str:
    """A plain-text table of the report for terminals."""
    lines = [
        f"train prompts: {report.train_prompts}  test prompts: {report.test_prompts}  "
        f"knob: {report.knob}  max cost: {report.max_cost:.3g} USD",
        "",
        f"{'router / model':44s} {'AIQ':>7s} {'ECE':>7s} {'Brier':>7s}",
    ]

    def cal(c: CalibrationScores | None) -> str:
        return f" {c.ece:7.4f} {c.brier:7.4f}" if c is not None else ""

    for r in report.routers:
        lines.append(f"{'router ' + r.name:44s} {r.aiq:7.4f}{cal(r.calibration)}")
    lines.append(
        f"{'zero router (hull of single models)':44s} {report.zero_aiq:7.4f}"
        f"{cal(report.zero_calibration)}"
    )
    lines.append(f"{'oracle':44s} {report.oracle.aiq:7.4f}{cal(report.oracle.calibration)}")
    for m, c, q in zip(report.models, report.single_cost, report.single_quality, strict=True):
        lines.append(
            f"{'  ' + m:44s} {report.single_aiq[m]:7.4f}   quality {q:.3f}  cost {c:.3g} USD"
        )
    shown = [(f"router {r.name}", r.calibration) for r in report.routers]
    shown.append(("zero (training success rate)", report.zero_calibration))
    lines += ["", "P(adequate) per model, ECE / Brier (adequate: quality >= 0.5):"]
    width = max(len(m) for m in report.models) + 2
    lines.append(f"{'model':{width}s}" + "".join(f" {name[:22]:>22s}" for name, _ in shown))
    for m in report.models:
        row = f"{m:{width}s}"
        for _, c in shown:
            row += (
                f" {c.per_model[m]['ece']:10.4f} / {c.per_model[m]['brier']:7.4f}"
                if c is not None
                else f" {'':>22s}"
            )
        lines.append(row)
    if report.strong is not None:
        lines += [
            "",
            f"strong: {report.strong}  weak: {report.weak}",
            f"{'router':20s} {'APGR':>7s} {'CPT(50%)':>9s} {'CPT(80%)':>9s}",
        ]
        for r in [*report.routers, report.oracle]:
            lines.append(
                f"{r.name:20s} {r.pair['apgr']:7.4f} {r.pair['cpt50']:9.2%} {r.pair['cpt80']:9.2%}"
            )
    return "\n".join(lines)
