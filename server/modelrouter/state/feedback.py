"""Feedback on decisions: committed before acknowledged, then taught to the adaptive policy."""

from __future__ import annotations

import logging
import time

from ..errors import FieldViolation, InvalidRequest, NotFound, StorageUnavailable
from .adaptive import AdaptivePolicy
from .interfaces import DecisionLog, FeedbackRecord

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "default"
MAX_COMMENT_CHARS = 10_000


class FeedbackService:
    def __init__(self, decisions: DecisionLog, adaptive: AdaptivePolicy) -> None:
        self.decisions = decisions
        self.adaptive = adaptive

    async def submit(
        self,
        tenant: str,
        decision_id: str,
        score: float,
        success: bool,
        comment: str = "",
        source: str = "",
    ) -> bool:
        """Record feedback; ``True`` when new, ``False`` for a repeat from the same source.

        Unknown decisions, and decisions of other tenants, are ``NotFound``.
        """
        violations = []
        if not decision_id:
            violations.append(
                FieldViolation("decision_id", "required: a decision id from Route or Execute")
            )
        if not 0.0 <= score <= 1.0:
            violations.append(
                FieldViolation("score", f"expected a number in [0, 1], got {score!r}")
            )
        if len(comment) > MAX_COMMENT_CHARS:
            violations.append(FieldViolation("comment", f"at most {MAX_COMMENT_CHARS} characters"))
        if violations:
            raise InvalidRequest(violations)
        decision = await self.decisions.get(decision_id)
        if decision is None or decision.tenant != tenant:
            # Another tenant's decision is reported exactly like a missing one.
            raise NotFound("decision", decision_id)
        record = FeedbackRecord(
            decision_id=decision_id,
            tenant=tenant,
            source=source or DEFAULT_SOURCE,
            score=score,
            success=success,
            comment=comment,
            created_at=time.time(),
        )
        created = await self.decisions.add_feedback(record)
        if created:
            try:
                await self.adaptive.learn(
                    decision.complexity, decision.task_type, decision.chosen_model, score, success
                )
            except StorageUnavailable:
                # The feedback itself is durable; only this one learning step is lost.
                log.warning(
                    "feedback %s stored but not learned: hot store unavailable", decision_id
                )
        return created
