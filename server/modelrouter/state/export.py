"""Logged decisions as routing-dataset lines: the labels ``export-feedback`` writes and
``retrain`` (on the command line or on the server's schedule) trains on.

A line is ``{"id", "prompt", "category", "scores": {model: 0..1}, "costs": {model: USD}}``
with only the models something scored: the caller's feedback scores the model that
answered, shadow evaluation the answering and the reference model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .interfaces import ExportRow
from .service import StateServices
from .shadow import ShadowResult

__all__ = ["export_line", "labelled_lines", "shadow_line"]


def export_line(row: ExportRow, shadow: ShadowResult | None = None) -> dict[str, Any]:
    """One routing-dataset line: the chosen model's mean feedback score and its cost, and,
    when the decision was shadowed, the reference model's judged score and cost."""
    d = row.decision
    scores = [f.score if f.success else 0.0 for f in row.feedback]
    cost = d.actual_cost_usd if d.actual_cost_usd is not None else d.estimated_cost_usd
    line_scores = {d.chosen_model: sum(scores) / len(scores)}
    line_costs = {d.chosen_model: cost}
    if shadow is not None:
        line_scores[shadow.reference_model] = shadow.reference_score
        line_costs[shadow.reference_model] = shadow.reference_cost_usd
    return {
        "id": d.decision_id,
        "prompt": d.prompt or "",
        "category": d.task_type.lower(),
        "scores": line_scores,
        "costs": line_costs,
    }


def shadow_line(result: ShadowResult, cost_usd: float | None) -> dict[str, Any]:
    """One routing-dataset line from a shadow evaluation alone: the judge's scores of the
    answering model and of the reference (the first's cost from the decision log)."""
    costs = {result.reference_model: result.reference_cost_usd}
    if cost_usd is not None:
        costs[result.model] = cost_usd
    return {
        "id": result.decision_id,
        "prompt": result.prompt or "",
        "category": result.task_type,
        "scores": {result.model: result.score, result.reference_model: result.reference_score},
        "costs": costs,
    }


async def labelled_lines(
    state: StateServices, tenant: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every labelled decision as a routing-dataset line: feedback (the caller's verdict on
    the model that answered) merged with shadow evaluation (the judge's verdicts on it and
    on the reference model). Feedback wins over the judge for the answering model."""
    shadowed = {r.decision_id: r for r in await state.shadow.results(tenant)}
    async for row in state.decisions.export(tenant):
        yield export_line(row, shadowed.pop(row.decision.decision_id, None))
    for result in shadowed.values():
        decision = await state.decisions.get(result.decision_id)
        yield shadow_line(result, decision.actual_cost_usd if decision else None)
