"""Feedback on decisions: committed before acknowledged, then taught to the adaptive policy.

A decision counts one feedback: a later one (from any source) replaces the earlier one,
in the log and in the adaptive statistics; the same feedback sent again changes nothing.
Hostile callers are bounded: at most ``max_sources`` distinct sources per decision,
``per_minute`` feedbacks per tenant per minute (counted in the hot store, so across every
replica), and ``source``/``comment`` lengths are checked here whatever the edge checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ..errors import FieldViolation, InvalidRequest, NotFound, QuotaExceeded, StorageUnavailable
from .adaptive import AdaptivePolicy
from .interfaces import DecisionLog, FeedbackRecord, HotState

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "default"
#: Defaults of ``[limits]`` until the configuration carries them.
MAX_SOURCES = 32
PER_MINUTE = 600
MAX_SOURCE_CHARS = 128
MAX_COMMENT_CHARS = 4096


class FeedbackService:
    def __init__(
        self,
        decisions: DecisionLog,
        adaptive: AdaptivePolicy,
        *,
        hot: HotState | None = None,
        max_sources: int = MAX_SOURCES,
        per_minute: int = PER_MINUTE,
        max_source_chars: int = MAX_SOURCE_CHARS,
        max_comment_chars: int = MAX_COMMENT_CHARS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.decisions = decisions
        self.adaptive = adaptive
        #: Where the per-tenant rate is counted (the adaptive policy's store by default).
        self.hot = hot if hot is not None else adaptive.store
        self.max_sources = max_sources
        self.per_minute = per_minute
        self.max_source_chars = max_source_chars
        self.max_comment_chars = max_comment_chars
        self.clock = clock

    def _validate(self, decision_id: str, score: float, comment: str, source: str) -> None:
        violations = []
        if not decision_id:
            violations.append(
                FieldViolation("decision_id", "required: a decision id from Route or Execute")
            )
        elif len(decision_id) > 256:
            violations.append(FieldViolation("decision_id", "at most 256 characters"))
        if not 0.0 <= score <= 1.0:
            violations.append(
                FieldViolation("score", f"expected a number in [0, 1], got {score!r}")
            )
        if len(source) > self.max_source_chars:
            violations.append(
                FieldViolation(
                    "source", f"at most {self.max_source_chars} characters, got {len(source)}"
                )
            )
        if len(comment) > self.max_comment_chars:
            violations.append(
                FieldViolation(
                    "comment", f"at most {self.max_comment_chars} characters, got {len(comment)}"
                )
            )
        if violations:
            raise InvalidRequest(violations)

    async def _rate_limit(self, tenant: str, now: float) -> None:
        if not self.per_minute:
            return
        count = await self.hot.hit(f"feedback:{len(tenant)}:{tenant}", 60, now)
        if count > self.per_minute:
            retry_after = 60 - now % 60
            raise QuotaExceeded(
                tenant,
                "feedback_per_minute",
                self.per_minute,
                datetime.fromtimestamp(now + retry_after, UTC),
                retry_after,
                f"tenant {tenant!r} sent more than {self.per_minute} feedbacks this minute "
                f"([limits] feedback_per_minute_per_tenant); retry in {retry_after:.0f}s",
            )

    async def submit(
        self,
        tenant: str,
        decision_id: str,
        score: float,
        success: bool,
        comment: str = "",
        source: str = "",
    ) -> bool:
        """Record feedback; ``True`` when it changed the decision's feedback, ``False`` when
        it repeats the feedback that already counts.

        Unknown decisions, and decisions of other tenants, are ``NotFound``; bad fields
        ``InvalidRequest``; past the rate or the sources bound ``QuotaExceeded``.
        """
        self._validate(decision_id, score, comment, source)
        now = self.clock()
        await self._rate_limit(tenant, now)
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
            created_at=now,
        )
        write = await self.decisions.add_feedback(record, self.max_sources)
        if write.status == "too_many_sources":
            raise QuotaExceeded(
                tenant,
                "feedback_sources",
                self.max_sources,
                datetime.fromtimestamp(now, UTC),
                None,
                f"decision {decision_id!r} already has feedback from {self.max_sources} "
                "sources ([limits] max_feedback_sources); send it under one of them",
            )
        if write.changed:
            previous = write.previous
            try:
                await self.adaptive.learn(
                    decision.complexity,
                    decision.task_type,
                    decision.chosen_model,
                    score,
                    success,
                    tenant=tenant,
                    previous=None if previous is None else (previous.score, previous.success),
                )
            except StorageUnavailable:
                # The feedback itself is durable; only this one learning step is lost.
                log.warning(
                    "feedback %s stored but not learned: hot store unavailable", decision_id
                )
        return write.changed
