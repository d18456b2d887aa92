"""``DecisionLog.recent``: the dashboard's most recent decisions, newest first, per tenant
or across tenants, on every backend."""

from __future__ import annotations

from modelrouter.state.interfaces import DecisionRecord

from .state_fixtures import Stores

NOW = 1_750_000_000.0


def decision(i: int, tenant: str) -> DecisionRecord:
    return DecisionRecord(
        f"d{i}", tenant, NOW + i, "execute", "SIMPLE", "QA", "rules", (), f"model-{i}",
        0.001 * i, f"reason {i}",
    )  # fmt: skip


async def test_recent_decisions_are_newest_first_and_scoped_to_the_tenant(stores: Stores):
    log = stores.decisions
    for i in range(12):
        await log.record(decision(i, "acme" if i % 3 else "globex"))

    acme = await log.recent("acme", 5)
    assert [d.decision_id for d in acme] == ["d11", "d10", "d8", "d7", "d5"]
    assert acme[0].reason == "reason 11" and acme[0].chosen_model == "model-11"

    everyone = await log.recent(None, 4)
    assert [d.decision_id for d in everyone] == ["d11", "d10", "d9", "d8"]

    assert [d.decision_id for d in await log.recent("globex", 100)] == ["d9", "d6", "d3", "d0"]
    assert await log.recent("nobody", 10) == []
