"""Redis hot state: budget counters and adaptive statistics shared by many replicas.

Reserve and settle are Lua scripts, so check-and-reserve across all windows is one atomic
step on the Redis server however many replicas race. Counters are hashes with an expiry
a little past their window. Connection failures are retried with backoff (see
``retry.py``); after that the call fails as UNAVAILABLE. The store also hands out a
circuit breaker shared by every replica (``redis_circuit.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .interfaces import (
    IN_FLIGHT,
    TOMBSTONE_TTL_S,
    ArmStats,
    Bucket,
    BucketUsage,
    HotState,
    StorageUnavailable,
)
from .redact import redact_url
from .redis_circuit import RedisCircuitBreaker
from .retry import RetryPolicy

_RETRY_ON = (RedisConnectionError, RedisTimeoutError, OSError)
#: How long a call waits for a free pooled connection before it counts as a failure.
POOL_WAIT_S = 10.0

# A reservation is a hash ``{prefix}:resv:{tenant}:<attempt id>`` (state held / settled /
# reaped, amount, created, the counter keys it holds money in); the tenant's held ones are
# also members of the sorted set ``{prefix}:inflight:{tenant}``, scored by creation time,
# which the in-flight cap counts and the reaper walks. All of a tenant's keys share the
# hash tag ``{tenant}``, so each script touches one cluster slot.

# KEYS: in-flight set, reservation hash, one counter hash per bucket.
# ARGV: attempt id, amount, now, max in flight (0: none), then limit and ttl per bucket.
# Returns 0 on success (or when the attempt is already known), -1 when the in-flight cap
# refuses, else the 1-based index of the first bucket that cannot fit.
_RESERVE = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local amount = tonumber(ARGV[2])
local cap = tonumber(ARGV[4])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return -1 end
for i = 3, #KEYS do
  local spent = tonumber(redis.call('HGET', KEYS[i], 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
  if spent + reserved + amount > tonumber(ARGV[5 + 2 * (i - 3)]) then
    return i - 2
  end
end
local counters = {}
for i = 3, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'reserved', amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[6 + 2 * (i - 3)]))
  counters[#counters + 1] = KEYS[i]
end
redis.call('HSET', KEYS[2], 'state', 'held', 'amount', amount, 'created', ARGV[3],
           'counters', table.concat(counters, '\n'))
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 0
"""

# Releases a held reservation's money from the counters it was made in.
_RELEASE = r"""
local function release(resv)
  local amount = tonumber(redis.call('HGET', resv, 'amount') or '0')
  local counters = redis.call('HGET', resv, 'counters') or ''
  for key in string.gmatch(counters, '[^\n]+') do
    local left = tonumber(redis.call('HGET', key, 'reserved') or '0') - amount
    if left < 0 then left = 0 end
    redis.call('HSET', key, 'reserved', left)
  end
end
"""

# KEYS: in-flight set, reservation hash, counter hashes to charge.
# ARGV: attempt id, actual cost, estimated (0/1), now, tombstone ttl, then ttl per bucket.
# Returns 1 when applied, 0 when the attempt was already settled.
_SETTLE = (
    _RELEASE
    + """
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'settled' then return 0 end
if state == 'held' then
  release(KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local actual = tonumber(ARGV[2])
for i = 3, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'spent', actual)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[5 + i - 2]))
end
redis.call('HSET', KEYS[2], 'state', 'settled', 'actual', actual, 'estimated', ARGV[3],
           'closed', ARGV[4])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return 1
"""
)

# KEYS: one tenant's in-flight set. ARGV: cutoff, limit, tombstone ttl, reservation key
# prefix. Releases up to ``limit`` held reservations made before the cutoff.
_REAP = (
    _RELEASE
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0,
                       tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local resv = ARGV[4] .. id
  if redis.call('HGET', resv, 'state') == 'held' then
    release(resv)
    redis.call('HSET', resv, 'state', 'reaped')
    redis.call('EXPIRE', resv, tonumber(ARGV[3]))
  end
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""
)

# KEYS: one counter. ARGV: window number, window seconds. Fixed-window event count.
_HIT = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n == 1 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if field ~= ARGV[1] then redis.call('HDEL', KEYS[1], field) end
  end
end
return n
"""

# KEYS: arm hash. ARGV: model, count increment, reward delta.
_REWARD = """
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '|n', tonumber(ARGV[2]))
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1] .. '|sum', ARGV[3])
return 0
"""


class RedisHotState(HotState):
    name = "redis"

    def __init__(self, url: str, prefix: str = "modelrouter", max_connections: int = 64) -> None:
        self.url = url
        self.max_connections = max_connections
        self.prefix = prefix
        self.retry = RetryPolicy()
        self._client: aioredis.Redis | None = None
        self._breakers: list[RedisCircuitBreaker] = []

    async def open(self) -> None:
        # A blocking pool: past ``max_connections`` concurrent calls wait for a connection
        # (up to ``POOL_WAIT_S``) instead of failing with "Too many connections" (redis-py's
        # default pool refuses the 101st concurrent call).
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=POOL_WAIT_S,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=30,
        )
        self._client = aioredis.Redis.from_pool(pool)
        try:
            await self._client.ping()
        except _RETRY_ON as error:
            await self.aclose()
            raise StorageUnavailable(
                f"cannot reach Redis at {redact_url(self.url)}: {redact_url(str(error))}"
            ) from None
        self._reserve = self._client.register_script(_RESERVE)
        self._settle = self._client.register_script(_SETTLE)
        self._reap = self._client.register_script(_REAP)
        self._hit = self._client.register_script(_HIT)
        self._reward = self._client.register_script(_REWARD)

    async def aclose(self) -> None:
        for breaker in self._breakers:
            await breaker.aclose()
        self._breakers.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> aioredis.Redis:
        assert self._client is not None, "RedisHotState.open() was not awaited"
        return self._client

    async def circuit_breaker(
        self, failure_threshold: int, cooldown_s: float
    ) -> RedisCircuitBreaker:
        """Failures seen by any replica open the circuit for all (see ``redis_circuit``)."""
        breaker = RedisCircuitBreaker(self.client, self.prefix, failure_threshold, cooldown_s)
        await breaker.start()
        self._breakers.append(breaker)
        return breaker

    def _key(self, tenant: str, bucket: Bucket) -> str:
        return f"{self.prefix}:budget:{{{tenant}}}:{bucket.window}:{bucket.label}"

    def _inflight_key(self, tenant: str) -> str:
        return f"{self.prefix}:inflight:{{{tenant}}}"

    def _resv_prefix(self, tenant: str) -> str:
        return f"{self.prefix}:resv:{{{tenant}}}:"

    async def reserve(
        self,
        tenant: str,
        attempt_id: str,
        amount: int,
        buckets: Sequence[Bucket],
        *,
        now: float,
        max_in_flight: int,
    ) -> Bucket | None:
        keys = [
            self._inflight_key(tenant),
            self._resv_prefix(tenant) + attempt_id,
            *(self._key(tenant, b) for b in buckets),
        ]
        args: list[str | int | float] = [attempt_id, amount, now, max_in_flight]
        for b in buckets:
            args += [b.limit, b.ttl_s]
        failed = int(
            await self.retry.run(
                "redis", "reserve", lambda: self._reserve(keys=keys, args=args), _RETRY_ON
            )
        )
        if failed < 0:
            return IN_FLIGHT
        return buckets[failed - 1] if failed else None

    async def settle(
        self,
        tenant: str,
        attempt_id: str,
        buckets: Sequence[Bucket],
        actual: int,
        *,
        estimated: bool,
        now: float,
    ) -> bool:
        keys = [
            self._inflight_key(tenant),
            self._resv_prefix(tenant) + attempt_id,
            *(self._key(tenant, b) for b in buckets),
        ]
        args: list[str | int | float] = [attempt_id, actual, int(estimated), now, TOMBSTONE_TTL_S]
        args += [b.ttl_s for b in buckets]
        applied = await self.retry.run(
            "redis", "settle", lambda: self._settle(keys=keys, args=args), _RETRY_ON
        )
        return bool(int(applied))

    async def reap(self, cutoff: float, limit: int, now: float) -> int:
        """Walks every tenant's in-flight set (SCAN: a batch at a time, never blocking Redis)."""
        released = 0
        prefix = f"{self.prefix}:inflight:{{"
        async for raw in self.client.scan_iter(match=_glob_escape(prefix) + "*", count=limit):
            key = raw.decode() if isinstance(raw, bytes) else raw
            tenant = key[len(prefix) : -1]
            args = [cutoff, limit - released, TOMBSTONE_TTL_S, self._resv_prefix(tenant)]
            released += int(
                await self.retry.run(
                    "redis",
                    "reap",
                    lambda key=key, args=args: self._reap(keys=[key], args=args),  # type: ignore[misc]
                    _RETRY_ON,
                )
            )
            if released >= limit:
                break
        return released

    async def in_flight(self, tenant: str) -> int:
        return int(
            await self.retry.run(
                "redis",
                "in_flight",
                lambda: self.client.zcard(self._inflight_key(tenant)),
                _RETRY_ON,
            )
        )

    async def hit(self, key: str, window_s: int, now: float) -> int:
        keys = [f"{self.prefix}:rate:{key}"]
        args = [int(now // window_s), window_s]
        return int(
            await self.retry.run("redis", "hit", lambda: self._hit(keys=keys, args=args), _RETRY_ON)
        )

    async def session_model(self, key: str, now: float) -> str | None:
        # Redis expires the key itself (TTL in Redis time), so ``now`` is not needed.
        value = await self.retry.run(
            "redis",
            "session_model",
            lambda: self.client.get(f"{self.prefix}:session:{key}"),
            _RETRY_ON,
        )
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def stick_session(self, key: str, model: str, ttl_s: float, now: float) -> None:
        milliseconds = max(int(ttl_s * 1000), 1)
        await self.retry.run(
            "redis",
            "stick_session",
            lambda: self.client.set(f"{self.prefix}:session:{key}", model, px=milliseconds),
            _RETRY_ON,
        )

    async def usage(self, tenant: str, buckets: Sequence[Bucket]) -> list[BucketUsage]:
        async def read() -> list[BucketUsage]:
            async with self.client.pipeline(transaction=False) as pipe:
                for b in buckets:
                    pipe.hmget(self._key(tenant, b), "spent", "reserved")
                rows = await pipe.execute()
            return [BucketUsage(int(s or 0), int(r or 0)) for s, r in rows]

        return await self.retry.run("redis", "usage", read, _RETRY_ON)

    def _arms_key(self, key: str) -> str:
        return f"{self.prefix}:arms:{key}"

    async def arm_stats(self, key: str) -> Mapping[str, ArmStats]:
        raw = await self.retry.run(
            "redis", "arm_stats", lambda: self.client.hgetall(self._arms_key(key)), _RETRY_ON
        )
        counts: dict[str, int] = {}
        sums: dict[str, float] = {}
        for field, value in raw.items():
            name = field.decode() if isinstance(field, bytes) else field
            model, _, kind = name.rpartition("|")
            if kind == "n":
                counts[model] = int(value)
            elif kind == "sum":
                sums[model] = float(value)
        return {m: ArmStats(counts[m], sums.get(m, 0.0)) for m in counts}

    async def record_reward(
        self, key: str, model: str, reward: float, previous: float | None = None
    ) -> None:
        keys = [self._arms_key(key)]
        args: list[str | int | float] = (
            [model, 1, reward] if previous is None else [model, 0, reward - previous]
        )
        await self.retry.run(
            "redis", "record_reward", lambda: self._reward(keys=keys, args=args), _RETRY_ON
        )


def _glob_escape(text: str) -> str:
    """``text`` matched literally by SCAN's glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
