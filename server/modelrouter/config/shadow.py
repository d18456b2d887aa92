"""The ``[shadow]`` table: live router quality, measured on a sample of real traffic.

A sampled share of a tenant's answered Execute calls is answered again by a reference
model, off the request path, and a judge model scores both answers. Off unless the
operator opts tenants in (``fraction`` or ``[shadow.tenants]``).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field
from pydantic.dataclasses import dataclass

from .fields import TABLE, Fraction, Int, Number, Text
from .state import BudgetLimits

__all__ = ["ShadowConfig"]


@dataclass(frozen=True, slots=True, config=TABLE)
class ShadowConfig:
    """The ``[shadow]`` table (and ``[shadow.tenants]``, ``[shadow.budget]``)."""

    fraction: Fraction = Field(
        default=0.0,
        description="Share of every tenant's answered Execute calls shadowed (0: off).",
    )
    tenants: Mapping[Text, Fraction] = Field(
        default_factory=dict,
        description="Share per tenant, replacing `fraction` for the tenants listed.",
    )
    reference_model: Text | None = Field(
        default=None,
        description="Catalog model answering again; unset: the strongest executable model "
        "that can serve the request.",
    )
    judge_model: Text | None = Field(
        default=None, description="Catalog model scoring both answers; unset: the reference."
    )
    adequate_score: Fraction = Field(
        default=0.5, description="Judge score (0..1) from which an answer counts as adequate."
    )
    budget: BudgetLimits = Field(
        default_factory=lambda: BudgetLimits(day_usd=1.0),
        description="Cap of each tenant's shadow spend (`[shadow.budget]`, per window; "
        "default 1 USD a day). Shadow spend is also charged to the tenant's own budget.",
    )
    max_in_flight: Int = Field(
        default=4, ge=1, description="Shadow evaluations running at once per replica; more skip."
    )
    timeout_s: Number = Field(
        default=60.0, gt=0.0, description="Seconds the reference answer and the judging each get."
    )
    judge_max_output_tokens: Int = Field(
        default=64, ge=16, description="Tokens the judge may answer with (a small JSON object)."
    )
    max_judged_chars: Int = Field(
        default=16_000,
        ge=200,
        description="Characters of the conversation and of each answer shown to the judge.",
    )

    def fraction_for(self, tenant: str) -> float:
        return self.tenants.get(tenant, self.fraction)
