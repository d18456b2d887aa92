"""Draw an evaluation: cost-quality curves and reliability diagrams (matplotlib, Agg, lazily)."""

from __future__ import annotations

from pathlib import Path

from .calibration import reliability_curve
from .metrics import quality_cost_hull
from .report import EvalReport

__all__ = ["plot_reliability", "plot_report"]


def plot_report(report: EvalReport, path: str | Path, title: str = "") -> None:
    """Save a PNG: each router's operating points and hull, the zero router, the oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for result in [*report.routers, report.oracle]:
        hc, hq = quality_cost_hull(result.sweep.costs, result.sweep.qualities)
        style = ":" if result.name == "oracle" else "-"
        (line,) = ax.plot(
            [*hc, report.max_cost],
            [*hq, hq[-1]],
            style,
            label=f"{result.name} (AIQ {result.aiq:.3f})",
        )
        ax.scatter(
            result.sweep.costs, result.sweep.qualities, s=6, alpha=0.35, color=line.get_color()
        )
    zc, zq = quality_cost_hull(report.single_cost, report.single_quality)
    ax.plot(
        [*zc, report.max_cost],
        [*zq, zq[-1]],
        "--",
        color="black",
        label=f"zero router (AIQ {report.zero_aiq:.3f})",
    )
    ax.scatter(report.single_cost, report.single_quality, marker="x", color="black")
    for m, c, q in zip(report.models, report.single_cost, report.single_quality, strict=True):
        ax.annotate(m, (c, q), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xlabel("mean cost per prompt (USD)")
    ax.set_ylabel("mean quality")
    ax.set_title(title or f"{report.test_prompts} test prompts, knob: {report.knob}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(Path(path))
    plt.close(fig)


def plot_reliability(report: EvalReport, path: str | Path, title: str = "", bins: int = 10) -> None:
    """Save a PNG reliability diagram of each router's P(adequate).

    Left: every router, all (prompt, model) pairs pooled, mean prediction against observed
    adequacy rate per bin (the diagonal is perfect calibration), with its ECE. Right: the
    first router, one line per model, and the share of predictions in each bin underneath.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (pooled, per_model) = plt.subplots(1, 2, figsize=(12, 5.5), dpi=110)
    shown = [(r.name, r.calibration) for r in report.routers if r.calibration is not None]
    if report.zero_calibration is not None:
        shown.append(("zero (base rate)", report.zero_calibration))
    for ax in (pooled, per_model):
        ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted P(adequate)")
        ax.set_ylabel("observed adequacy rate")
        ax.grid(alpha=0.3)
    for name, cal in shown:
        curve = reliability_curve(cal.predicted, cal.outcome, bins)
        pooled.plot(
            curve.predicted,
            curve.observed,
            "o-",
            markersize=3,
            label=f"{name} (ECE {cal.ece:.3f}, Brier {cal.brier:.3f})",
        )
    pooled.set_title("all models pooled")
    pooled.legend(fontsize=7, loc="upper left")
    if shown:
        name, cal = shown[0]
        for j, model in enumerate(report.models):
            curve = reliability_curve(cal.predicted[:, j], cal.outcome[:, j], bins)
            per_model.plot(
                curve.predicted,
                curve.observed,
                "o-",
                markersize=2,
                linewidth=1,
                label=f"{model} ({cal.per_model[model]['ece']:.3f})",
            )
        hist = per_model.twinx()
        hist.hist(cal.predicted.ravel(), bins=bins, range=(0, 1), alpha=0.15, color="black")
        hist.set_yticks([])
        per_model.set_title(f"router {name}, per model (ECE)")
        per_model.legend(fontsize=6, loc="upper left")
    fig.suptitle(title or f"{report.test_prompts} test prompts")
    fig.tight_layout()
    fig.savefig(Path(path))
    plt.close(fig)
