"""Draw cost-quality curves of an evaluation (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

from .metrics import quality_cost_hull
from .report import EvalReport

__all__ = ["plot_report"]


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
