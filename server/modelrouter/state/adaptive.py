"""Adaptive routing: learn from feedback which eligible model gives the best quality per dollar.

Per (complexity, task type) every model has a Beta posterior over its reward (the
feedback score, 0 when the call was marked unsuccessful), starting from the catalog
quality worth ``prior_strength`` observations. The value of a model is its quality
minus ``cost_weight`` times its estimated cost. Most requests exploit the best posterior
mean; at most ``explore_fraction`` of them draw a Thompson sample instead. Either way the
choice is made only among the candidates selection already found eligible (and that fit
the budget), so exploring never breaks a constraint. Statistics live in the hot store,
so every replica learns from every replica's feedback.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config import AdaptiveConfig
from ..selection import Candidate
from ..types import Classification
from .interfaces import ArmStats, HotState


def arm_key(complexity: str, task_type: str) -> str:
    return f"{complexity.lower()}:{task_type.lower()}"


@dataclass(frozen=True, slots=True)
class AdaptiveChoice:
    candidate: Candidate
    explored: bool
    #: Human-readable account for the decision's reason.
    note: str


class AdaptivePolicy:
    def __init__(
        self, config: AdaptiveConfig, store: HotState, rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.rng = rng or random.Random()

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
        self, classification: Classification, candidates: Sequence[Candidate]
    ) -> AdaptiveChoice:
        key = arm_key(classification.complexity.name, classification.task_type.name)
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
                    f"{best.model.name}, {observations} feedback observations for {key})",
                )
        return AdaptiveChoice(
            best,
            False,
            f"adaptive: exploited {best.model.name} (best quality minus "
            f"{self.config.cost_weight:g} x cost, posterior quality {mean(best):.2f}, "
            f"{observations} feedback observations for {key})",
        )

    async def learn(
        self, complexity: str, task_type: str, model: str, score: float, success: bool
    ) -> None:
        reward = score if success else 0.0
        await self.store.record_reward(arm_key(complexity, task_type), model, reward)
