"""Adaptive routing: learn from feedback which eligible model gives the best quality per dollar.

Per (complexity, task type) every model has a Beta posterior over its reward (the
feedback score, 0 when the call was marked unsuccessful), starting from the catalog
quality worth ``prior_strength`` observations. The value of a model is its quality
minus ``cost_weight`` times its estimated cost. Most requests exploit the best posterior
mean; at most ``explore_fraction`` of them draw a Thompson sample instead. Either way the
choice is made only among the candidates selection already found eligible (and that fit
the budget), so exploring never breaks a constraint. Statistics live in the hot store,
so every replica learns from every replica's feedback.

Statistics are kept per tenant: one tenant's feedback never steers another's routing.
With ``[adaptive] pool_tenants = true`` every tenant learns from (and steers) one shared
set of statistics instead.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config import AdaptiveConfig
from ..selection import Candidate
from ..types import Classification
from .interfaces import ArmStats, HotState

#: The statistics key space shared by every tenant when ``pool_tenants`` is on.
POOLED = "*"


def arm_key(complexity: str, task_type: str, tenant: str = POOLED) -> str:
    """Where the statistics of (``complexity``, ``task_type``) live for ``tenant``."""
    base = f"{complexity.lower()}:{task_type.lower()}"
    # Length-prefixed so no tenant name can forge another tenant's key.
    return base if tenant == POOLED else f"t{len(tenant)}:{tenant}:{base}"


@dataclass(frozen=True, slots=True)
class AdaptiveChoice:
    candidate: Candidate
    explored: bool
    #: Human-readable account for the decision's reason.
    note: str


class AdaptivePolicy:
    def __init__(
        self,
        config: AdaptiveConfig,
        store: HotState,
        rng: random.Random | None = None,
        *,
        pool_tenants: bool | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.rng = rng or random.Random()
        #: Share statistics between tenants (``[adaptive] pool_tenants``, default off).
        self.pool_tenants = (
            bool(getattr(config, "pool_tenants", False)) if pool_tenants is None else pool_tenants
        )

    def key(self, complexity: str, task_type: str, tenant: str) -> str:
        return arm_key(complexity, task_type, POOLED if self.pool_tenants else tenant)

    def enabled_for(self, tenant: str) -> bool:
        return self.config.enabled_for(tenant)

    def _posterior(self, candidate: Candidate, stats: ArmStats) -> tuple[float, float]:
        prior = min(max(candidate.quality, 0.01), 0.99)
        alpha = self.config.prior_strength * prior + stats.reward_sum
        beta = self.config.prior_strength * (1 - prior) + stats.count - stats.reward_sum
        return alpha, max(beta, 1e-6)

    def _value(self, candidate: Candidate, quality: float) -> float:
        return quality - self.config.cost_weight * candidate.estimated_cost_usd

    async def choose(
        self,
        classification: Classification,
        candidates: Sequence[Candidate],
        tenant: str = POOLED,
    ) -> AdaptiveChoice:
        """Choose among ``candidates`` from ``tenant``'s statistics (pass the tenant: without
        it the pooled statistics are used)."""
        complexity, task_type = classification.complexity.name, classification.task_type.name
        key = self.key(complexity, task_type, tenant)
        shown = arm_key(complexity, task_type)
        stats: Mapping[str, ArmStats] = await self.store.arm_stats(key)
        posteriors = {
            c.model.name: self._posterior(c, stats.get(c.model.name, ArmStats()))
            for c in candidates
        }

        def mean(c: Candidate) -> float:
            a, b = posteriors[c.model.name]
            return a / (a + b)

        best = max(candidates, key=lambda c: (self._value(c, mean(c)), -c.estimated_cost_usd))
        observations = sum(stats.get(c.model.name, ArmStats()).count for c in candidates)
        if len(candidates) > 1 and self.rng.random() < self.config.explore_fraction:
            samples = {
                c.model.name: self.rng.betavariate(*posteriors[c.model.name]) for c in candidates
            }
            chosen = max(candidates, key=lambda c: self._value(c, samples[c.model.name]))
            if chosen is not best:
                return AdaptiveChoice(
                    chosen,
                    True,
                    f"adaptive: explored {chosen.model.name} (Thompson sample; best estimate "
                    f"{best.model.name}, {observations} feedback observations for {shown})",
                )
        return AdaptiveChoice(
            best,
            False,
            f"adaptive: exploited {best.model.name} (best quality minus "
            f"{self.config.cost_weight:g} x cost, posterior quality {mean(best):.2f}, "
            f"{observations} feedback observations for {shown})",
        )

    async def learn(
        self,
        complexity: str,
        task_type: str,
        model: str,
        score: float,
        success: bool,
        *,
        tenant: str = POOLED,
        previous: tuple[float, bool] | None = None,
    ) -> None:
        """Count one feedback (``score``, ``success``) for ``model`` in ``tenant``'s statistics;
        with ``previous`` (its score and success) it replaces that earlier feedback instead
        of adding an observation."""
        reward = score if success else 0.0
        replaced = None if previous is None else (previous[0] if previous[1] else 0.0)
        await self.store.record_reward(
            self.key(complexity, task_type, tenant), model, reward, replaced
        )
