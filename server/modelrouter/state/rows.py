"""Decisions and feedback as rows of the SQL backends (SQLite and PostgreSQL share them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .interfaces import (
    Bucket,
    DecisionRecord,
    FeedbackRecord,
    candidates_from_json,
    candidates_to_json,
)

DECISION_COLUMNS = (
    "decision_id, tenant, created_at, kind, complexity, task_type, classifier, candidates, "
    "chosen_model, estimated_cost_usd, reason, explored, prompt, actual_cost_usd, latency_ms, "
    "outcome, router_version"
)

#: Columns added after the first schema: (name, SQL type and default), added on open to
#: existing databases (the CREATE TABLE statements already include them).
ADDED_DECISION_COLUMNS = (("router_version", "TEXT NOT NULL DEFAULT ''"),)

FEEDBACK_COLUMNS = "decision_id, source, tenant, score, success, comment, created_at"


def buckets_to_json(buckets: Sequence[Bucket]) -> str:
    """The (window, label) pairs a reservation was made in, as stored with it."""
    return json.dumps([[b.window, b.label] for b in buckets])


def buckets_from_json(text: str) -> list[tuple[str, str]]:
    return [(window, label) for window, label in json.loads(text)]


def decision_row(d: DecisionRecord) -> tuple[Any, ...]:
    return (
        d.decision_id,
        d.tenant,
        d.created_at,
        d.kind,
        d.complexity,
        d.task_type,
        d.classifier,
        json.dumps(candidates_to_json(d.candidates)),
        d.chosen_model,
        d.estimated_cost_usd,
        d.reason,
        bool(d.explored),
        d.prompt,
        d.actual_cost_usd,
        d.latency_ms,
        d.outcome,
        d.router_version,
    )


def decision_from_row(row: Sequence[Any]) -> DecisionRecord:
    candidates = row[7] if isinstance(row[7], list) else json.loads(row[7])
    return DecisionRecord(
        decision_id=row[0],
        tenant=row[1],
        created_at=float(row[2]),
        kind=row[3],
        complexity=row[4],
        task_type=row[5],
        classifier=row[6],
        candidates=candidates_from_json(candidates),
        chosen_model=row[8],
        estimated_cost_usd=float(row[9]),
        reason=row[10],
        explored=bool(row[11]),
        prompt=row[12],
        actual_cost_usd=row[13],
        latency_ms=row[14],
        outcome=row[15],
        router_version=row[16] or "",
    )


def feedback_from_row(row: Sequence[Any]) -> FeedbackRecord:
    return FeedbackRecord(
        decision_id=row[0],
        source=row[1],
        tenant=row[2],
        score=float(row[3]),
        success=bool(row[4]),
        comment=row[5],
        created_at=float(row[6]),
    )
