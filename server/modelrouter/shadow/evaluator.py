"""Shadow evaluation: is routing still good on live traffic?

After an Execute (or ExecuteStream) call was answered, :meth:`ShadowEvaluator.offer`
samples it (the tenant's ``[shadow]`` fraction, decided by a hash of the decision id so
every replica agrees) and, off the request path, has the reference model answer the same
request and the judge model score both answers. Each result updates the live metrics
(adequacy rate, quality gap to the reference and calibration error of P(adequate), per
answering model and complexity tier) and is kept in the shadow log as a training label.

Money: the reference call and the judging are charged to the tenant, on their own line.
Before each call its ceiling (prompt estimate plus the output allowed) is held both in the
tenant's budget and in the tenant's shadow line (capped by ``[shadow.budget]``), keyed by
the decision so the hold is idempotent; after it, both are settled with what the call
consumed: the reported usage, the ceiling when it was cut short (a timeout or a shutdown:
the upstream may have generated that much), nothing when the upstream refused it. When
either budget cannot hold the ceiling, the evaluation is skipped before anything is sent.

Content: the conversation goes only to the reference and judge models, providers the
operator configured; no prompt or answer text is put in telemetry or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Observation

from ..base import Completion, ProviderCall, Usage
from ..catalog import Catalog
from ..config import ModelSpec, ShadowConfig
from ..decision import Decision, ExecutionSummary
from ..errors import BudgetExhausted, ProviderError, RouterError
from ..state.budgets import Budgets, Reservation, WindowUsage
from ..state.shadow import ShadowLog, ShadowResult
from ..telemetry import Telemetry
from ..telemetry import attributes as a
from ..tokens import estimate_prompt_tokens
from ..types import RoutingRequest, ToolCall, needed_capabilities
from .judging import grading_prompt, parse_grades, render_tool_calls
from .stats import ShadowStats

__all__ = ["SHADOW_LINE", "ShadowEvaluator", "sampled"]

log = logging.getLogger(__name__)

#: Suffix of the tenant key the shadow line's counters are kept under in the hot store.
SHADOW_LINE = "#shadow"


def sampled(decision_id: str, fraction: float) -> bool:
    """Whether ``decision_id`` falls in the sampled ``fraction`` (the same on every replica)."""
    if fraction <= 0.0:
        return False
    digest = hashlib.blake2b(decision_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < fraction


@dataclass(frozen=True, slots=True)
class _Job:
    request: RoutingRequest
    summary: ExecutionSummary
    reference: ModelSpec
    judge: ModelSpec


class ShadowEvaluator:
    """Built once by ``create_server``; :meth:`offer` never blocks nor raises."""

    def __init__(
        self,
        config: ShadowConfig,
        catalog: Catalog,
        budgets: Budgets,
        line: Budgets,
        log_: ShadowLog,
        telemetry: Telemetry,
        *,
        log_prompts: bool,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.budgets = budgets
        #: The tenants' shadow line: the same hot store, limits from ``[shadow.budget]``.
        self.line = line
        self.log = log_
        self.telemetry = telemetry
        self.log_prompts = log_prompts
        self.rng = rng
        self.stats = ShadowStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self.enabled = config.fraction > 0 or any(f > 0 for f in config.tenants.values())
        if self.enabled and telemetry.metering:
            telemetry.meter.create_observable_gauge(
                a.METRIC_SHADOW_CALIBRATION_ERROR,
                callbacks=[self._observe_calibration],
                unit="1",
                description="Expected calibration error of the router's P(adequate) "
                "against the shadow judge's verdicts (10 bins), by model and complexity.",
            )

    # -- sampling (on the request path: cheap, synchronous) ------------------------------------

    def samples(self, request: RoutingRequest, decision: Decision) -> bool:
        """Whether ``decision``'s answer will be evaluated (if it is answered)."""
        return self.enabled and sampled(
            decision.decision_id, self.config.fraction_for(request.tenant)
        )

    def offer(self, request: RoutingRequest, summary: ExecutionSummary) -> None:
        """Consider an answered call for shadow evaluation; the work runs in the background."""
        if not summary.model or not (summary.text or summary.tool_calls):
            return
        if not self.samples(request, summary.decision):
            return
        reference = self._reference(request, summary)
        if reference is None:
            self._skip(request.tenant, "no_reference")
            return
        if reference.name == summary.model:
            self._skip(request.tenant, "reference_answered")
            return
        judge = self.catalog.models.get(self.config.judge_model or reference.name, reference)
        if len(self._tasks) >= self.config.max_in_flight:
            self._skip(request.tenant, "busy")
            return
        task = asyncio.create_task(self._evaluate(_Job(request, summary, reference, judge)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reference(self, request: RoutingRequest, summary: ExecutionSummary) -> ModelSpec | None:
        """The configured reference when it can serve this request, else (none configured)
        the strongest model this server can call that can."""
        needs = needed_capabilities(request.messages, request.options)
        selection = summary.decision.selection
        tokens = selection.input_tokens + selection.max_output_tokens
        task = summary.decision.classification.task_type

        def serves(model: ModelSpec) -> bool:
            return (
                needs <= model.capabilities
                and tokens <= model.context_window_tokens
                and self.catalog.unavailable_reason(model) is None
            )

        if self.config.reference_model is not None:
            model = self.catalog.models[self.config.reference_model]
            return model if serves(model) else None
        eligible: Iterable[ModelSpec] = filter(serves, self.catalog.models.values())
        return max(
            eligible,
            key=lambda m: (m.quality_for(task), m.output_price_usd_per_mtok),
            default=None,
        )

    # -- the evaluation (off the request path) -------------------------------------------------

    async def _evaluate(self, job: _Job) -> None:
        tenant, decision_id = job.request.tenant, job.summary.decision.decision_id
        try:
            await self._run(job)
        except BudgetExhausted:
            self._skip(tenant, "budget")
        except ProviderError as error:
            self._skip(tenant, f"provider_{error.kind}")
        except RouterError as error:
            log.warning("shadow evaluation of %s failed: %s", decision_id, error)
            self._skip(tenant, "error")
        except Exception:
            log.exception("shadow evaluation of %s failed", decision_id)
            self._skip(tenant, "error")

    async def _run(self, job: _Job) -> None:
        request, summary = job.request, job.summary
        decision = summary.decision
        selection = decision.selection
        reference_answer, reference_cost = await self._call(
            job,
            f"{decision.decision_id}:shadow:reference",
            job.reference,
            ProviderCall(
                model=job.reference.upstream_model,
                messages=request.messages,
                max_output_tokens=selection.max_output_tokens,
                timeout_s=self.config.timeout_s,
                options=request.options,
            ),
            selection.input_tokens,
        )
        prompt = grading_prompt(
            request.messages,
            _answer_text(summary.text, summary.tool_calls),
            _answer_text(reference_answer.text, reference_answer.tool_calls),
            limit=self.config.max_judged_chars,
            swap=self.rng() < 0.5,
        )
        judge_call = ProviderCall(
            model=job.judge.upstream_model,
            messages=prompt.messages,
            max_output_tokens=self.config.judge_max_output_tokens,
            timeout_s=self.config.timeout_s,
            temperature=0.0,
        )
        verdict, judge_cost = await self._call(
            job,
            f"{decision.decision_id}:shadow:judge",
            job.judge,
            judge_call,
            estimate_prompt_tokens(prompt.messages),
        )
        grades = parse_grades(verdict.text, prompt)
        if grades is None:
            self._skip(request.tenant, "judge_malformed")
            return
        score, reference_score = grades
        classification = decision.classification
        p_adequate = (
            classification.predicted_quality.get(summary.model)
            if classification.features.get("calibrated", 0.0) > 0
            else None
        )
        result = ShadowResult(
            decision_id=decision.decision_id,
            tenant=request.tenant,
            created_at=time.time(),
            model=summary.model,
            reference_model=job.reference.name,
            complexity=classification.complexity.name.lower(),
            task_type=classification.task_type.name.lower(),
            score=score,
            reference_score=reference_score,
            adequate=score >= self.config.adequate_score,
            p_adequate=p_adequate,
            reference_cost_usd=reference_cost,
            judge_cost_usd=judge_cost,
            router_version=classification.router_version,
            prompt=request.prompt if self.log_prompts else None,
        )
        await self.log.record(result)
        self._observe(result)

    async def _call(
        self, job: _Job, charge_id: str, model: ModelSpec, call: ProviderCall, input_tokens: int
    ) -> tuple[Completion, float]:
        """One metered call: held in both budgets before, settled in both after."""
        tenant = job.request.tenant
        holds = await self._hold(
            tenant, charge_id, model.cost_usd(input_tokens, call.max_output_tokens)
        )
        # Until the upstream reports usage, the call may have consumed its whole ceiling.
        consumed: Usage | None = Usage(input_tokens, call.max_output_tokens)
        estimated = True
        try:
            completion = await asyncio.wait_for(
                self.catalog.provider_for(model).complete(call), self.config.timeout_s
            )
            consumed, estimated = completion.usage, False
            return completion, model.cost_usd(consumed.input_tokens, consumed.output_tokens)
        except ProviderError as error:
            if error.kind != "timeout":
                consumed = None  # an error status: the upstream refused, nothing consumed
            raise
        except TimeoutError:
            raise ProviderError(
                "timeout", "no answer within shadow.timeout_s", retryable=False
            ) from None
        finally:
            cost = (
                model.cost_usd(consumed.input_tokens, consumed.output_tokens) if consumed else 0.0
            )
            await asyncio.shield(self._settle(holds, cost, estimated))
            self.stats.spent(tenant, cost)
            if cost and self.telemetry.metering:
                self.telemetry.metrics.cost.add(cost, {a.MODEL: model.name, a.COST_LINE: "shadow"})

    async def _hold(
        self, tenant: str, charge_id: str, ceiling: float
    ) -> list[tuple[Budgets, Reservation]]:
        own = await self.budgets.reserve(tenant, ceiling, attempt_id=charge_id)
        try:
            line = await self.line.reserve(tenant + SHADOW_LINE, ceiling, attempt_id=charge_id)
        except BaseException:
            await asyncio.shield(self.budgets.release(own))
            raise
        return [(self.budgets, own), (self.line, line)]

    @staticmethod
    async def _settle(
        holds: list[tuple[Budgets, Reservation]], cost: float, estimated: bool
    ) -> None:
        for budgets, hold in holds:
            await budgets.settle(hold, cost, estimated=estimated)

    # -- what it found -------------------------------------------------------------------------

    def _observe(self, result: ShadowResult) -> None:
        gap = result.reference_score - result.score
        self.stats.observe(
            result.tenant,
            result.model,
            result.complexity,
            adequate=result.adequate,
            gap=gap,
            p_adequate=result.p_adequate,
        )
        telemetry = self.telemetry
        if telemetry.metering:
            point = {a.MODEL: result.model, a.COMPLEXITY: result.complexity}
            telemetry.metrics.shadow_evaluations.add(
                1, {**point, a.SHADOW_ADEQUATE: result.adequate}
            )
            telemetry.metrics.shadow_quality_gap.record(gap, point)

    def _skip(self, tenant: str, reason: str) -> None:
        self.stats.skip(tenant, reason)
        if self.telemetry.metering:
            self.telemetry.metrics.shadow_skipped.add(1, {a.SHADOW_SKIP_REASON: reason})

    def _observe_calibration(self, options: CallbackOptions) -> Iterable[Observation]:
        for quality in self.stats.snapshot():
            if quality.calibrated_evaluations:
                yield Observation(
                    quality.calibration_error,
                    {a.MODEL: quality.model, a.COMPLEXITY: quality.complexity},
                )

    async def usage(self, tenant: str) -> list[WindowUsage]:
        """The tenant's shadow line: spend against each window of ``[shadow.budget]``."""
        return await self.line.usage(tenant + SHADOW_LINE)

    async def drain(self) -> None:
        """Wait for the evaluations in flight (tests, and a graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel what is still running; the money of calls cut short is still settled."""
        for task in list(self._tasks):
            task.cancel()
        await self.drain()


def _answer_text(text: str, tool_calls: tuple[ToolCall, ...]) -> str:
    return f"{text} {render_tool_calls(tool_calls)}".strip() if tool_calls else text
