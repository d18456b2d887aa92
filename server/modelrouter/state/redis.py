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

from .interfaces import ArmStats, Bucket, BucketUsage, HotState, StorageUnavailable
from .redis_circuit import RedisCircuitBreaker
from .retry import RetryPolicy

_RETRY_ON = (RedisConnectionError, RedisTimeoutError, OSError)

# KEYS: one counter hash per bucket. ARGV: amount, then limit and ttl per bucket.
# Returns 0 on success, else the 1-based index of the first bucket that cannot fit.
_RESERVE = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
  if spent + reserved + amount > tonumber(ARGV[2 * i]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'reserved', amount)
  redis.call('EXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""

# KEYS: counter hashes. ARGV: reserved amount, actual cost, then ttl per bucket.
_SETTLE = """
local reserved_amount = tonumber(ARGV[1])
local actual = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
  local left = reserved - reserved_amount
  if left < 0 then left = 0 end
  redis.call('HSET', key, 'reserved', left)
  redis.call('HINCRBY', key, 'spent', actual)
  redis.call('EXPIRE', key, tonumber(ARGV[2 + i]))
end
return 0
"""


class RedisHotState(HotState):
    name = "redis"

    def __init__(self, url: str, prefix: str = "modelrouter") -> None:
        self.url = url
        self.prefix = prefix
        self.retry = RetryPolicy()
        self._client: aioredis.Redis | None = None
        self._breakers: list[RedisCircuitBreaker] = []

    async def open(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=30
        )
        try:
            await self._client.ping()
        except _RETRY_ON as error:
            await self.aclose()
            raise StorageUnavailable(f"cannot reach Redis at {self.url}: {error}") from error
        self._reserve = self._client.register_script(_RESERVE)
        self._settle = self._client.register_script(_SETTLE)

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

    async def reserve(self, tenant: str, amount: int, buckets: Sequence[Bucket]) -> Bucket | None:
        keys = [self._key(tenant, b) for b in buckets]
        args: list[int] = [amount]
        for b in buckets:
            args += [b.limit, b.ttl_s]
        failed = await self.retry.run(
            "redis", "reserve", lambda: self._reserve(keys=keys, args=args), _RETRY_ON
        )
        return buckets[int(failed) - 1] if int(failed) else None

    async def settle(
        self, tenant: str, buckets: Sequence[Bucket], reserved: int, actual: int
    ) -> None:
        keys = [self._key(tenant, b) for b in buckets]
        args = [reserved, actual, *(b.ttl_s for b in buckets)]
        await self.retry.run(
            "redis", "settle", lambda: self._settle(keys=keys, args=args), _RETRY_ON
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

    async def record_reward(self, key: str, model: str, reward: float) -> None:
        async def write() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hincrby(self._arms_key(key), f"{model}|n", 1)
                pipe.hincrbyfloat(self._arms_key(key), f"{model}|sum", reward)
                await pipe.execute()

        await self.retry.run("redis", "record_reward", write, _RETRY_ON)
