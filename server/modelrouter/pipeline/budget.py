"""Money held per provider attempt: reserved before each call, settled with what it cost.

Budgets hold money per attempt, not per request. Before every provider call (each retry
and each fallback) the maximum cost of that call (prompt estimate plus max output tokens
on that model) is reserved under an id unique to the attempt, so a retried reserve or
settle is applied once. Each hold is settled with what its attempt consumed: the
provider's usage, or an estimate when it reported none (failure, timeout, cancellation).

Why per attempt rather than one reservation for the request:

* Reserving only the selected model let a failover to a pricier fallback spend money
  nobody had reserved, so N concurrent requests failing over could overspend by N
  fallback calls.
* Reserving the maximum over every candidate the executor may try refuses requests
  needlessly: a request whose cheap selected model fits would be refused because a pricey
  fallback it will probably never call does not.

Degrade before reject: when a model's reservation does not fit, it is passed over and
the next fallback is tried. The request is refused with ``BudgetExhausted`` only when
nothing has been called yet and no fallback left is cheaper than the model refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from ..decision import AttemptRecord, Candidate, Decision
from ..errors import BudgetExhausted
from ..state.budgets import Budgets, Reservation


class AttemptBudget:
    """The holds of one execution; every method is safe to call again."""

    def __init__(self, budgets: Budgets, tenant: str, decision: Decision) -> None:
        self.budgets = budgets
        self.tenant = tenant
        self.decision = decision
        self.limited = budgets.has_limits(tenant)
        #: Attempt index -> the reservation covering that attempt.
        self._holds: dict[int, Reservation] = {}

    async def admit(self, candidate: Candidate, attempts: Sequence[AttemptRecord]) -> str | None:
        """Reserve for the next attempt (index ``len(attempts)``); a reason to pass
        ``candidate`` over, or ``None``. Raises ``BudgetExhausted`` to refuse the request."""
        # The attempts that ended no longer need their maximum held: free it for this one.
        await self.settle(attempts)
        if not self.limited:
            return None
        amount = candidate.estimated_cost_usd
        attempt_id = f"{self.decision.decision_id}:{len(attempts)}"
        try:
            reservation = await self.budgets.reserve(self.tenant, amount, attempt_id=attempt_id)
        except asyncio.CancelledError:
            # The store may have applied the reserve before the cancellation reached us.
            await finish_even_if_cancelled(self.budgets.release_attempt(self.tenant, attempt_id))
            raise
        except BudgetExhausted as exhausted:
            candidates = self.decision.selection.candidates
            later = candidates[candidates.index(candidate) + 1 :]
            if not attempts and all(c.estimated_cost_usd >= amount for c in later):
                raise  # nothing called yet and nothing cheaper left: refuse the request
            return (
                f"budget: its maximum cost ${amount:.6f} does not fit in what is left of "
                f"the {exhausted.window} budget"
            )
        self._holds[len(attempts)] = reservation
        return None

    async def settle(self, attempts: Sequence[AttemptRecord]) -> None:
        """Settle the hold of every attempt in ``attempts`` with what it cost; a hold whose
        attempt never started (refused by a later check) is released."""
        for index, reservation in list(self._holds.items()):
            if index < len(attempts):
                record = attempts[index]
                await self.budgets.settle(
                    reservation, record.cost_usd, estimated=record.usage_estimated
                )
                del self._holds[index]

    async def release_unused(self) -> None:
        """Give back holds no attempt used (execution ended before the call began)."""
        for reservation in self._holds.values():
            await self.budgets.release(reservation)
        self._holds.clear()


async def finish_even_if_cancelled(work: Awaitable[None]) -> None:
    """Await ``work`` in its own task, so that cancelling the caller does not cut it short
    (money bookkeeping must complete); the cancellation goes on once it is done."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
