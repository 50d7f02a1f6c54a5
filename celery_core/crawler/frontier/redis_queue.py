"""The shared queue of a sharded website item, in Redis (see `shared_frontier`).

Keys under `pixcrawler:frontier:<name>:`: `queue` (list of candidates as JSON), `seen` (set of
URLs ever queued), `lead` (the leading shard's token, expiring unless renewed), `done`. All
expire with the job's results.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

import redis
import redis.asyncio as aioredis

from celery_core.crawler.types import Candidate

LEAD_TTL_S = 30

# KEYS: lead   ARGV: token, ttl s   -> 1 if this token holds the lead now
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
  return 1
end
return 0
"""


class RedisFrontier:
    def __init__(self, url: str, name: str, ttl_s: int, lead_ttl_s: int = LEAD_TTL_S) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=10)
        prefix = f"pixcrawler:frontier:{name}:"
        self.queue, self.seen = prefix + "queue", prefix + "seen"
        self.lead_key, self.done = prefix + "lead", prefix + "done"
        self.ttl_s = ttl_s
        self.lead_ttl_s = lead_ttl_s
        self.token = secrets.token_hex(8)
        self._lead = self.client.register_script(_LEAD)

    async def lead(self) -> bool:
        return bool(await self._lead(keys=[self.lead_key], args=[self.token, self.lead_ttl_s]))

    async def push(self, candidates: Sequence[Candidate]) -> int:
        if not candidates:
            return 0
        async with self.client.pipeline(transaction=False) as pipe:
            for candidate in candidates:
                pipe.sadd(self.seen, candidate.url)
            added = await pipe.execute()
        fresh = [c for c, new in zip(candidates, added, strict=True) if new]
        async with self.client.pipeline(transaction=False) as pipe:
            if fresh:
                pipe.rpush(self.queue, *[_dump(c) for c in fresh])
            for key in (self.queue, self.seen):
                pipe.expire(key, self.ttl_s)
            await pipe.execute()
        return len(fresh)

    async def pop(self, count: int) -> list[Candidate]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(self.queue, 0, count - 1)
            pipe.ltrim(self.queue, count, -1)
            taken, _ = await pipe.execute()
        return [_load(raw) for raw in taken]

    async def finish(self) -> None:
        await self.client.set(self.done, "1", ex=self.ttl_s)

    async def finished(self) -> bool:
        return bool(await self.client.exists(self.done))

    async def close(self) -> None:
        await self.client.aclose()


# KEYS: count   ARGV: cap, ttl s   -> 1 if a slot was taken
_TAKE = """
local taken = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if taken > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
"""


class RedisQuota:
    """A `Quota` in Redis: a counter that never goes past `cap` (synchronous client)."""

    def __init__(self, client: redis.Redis, name: str, cap: int, ttl_s: int) -> None:
        self.client = client
        self.key = f"pixcrawler:frontier:{name}:kept"
        self.cap = cap
        self.ttl_s = ttl_s
        self._take = client.register_script(_TAKE)

    def take(self) -> bool:
        return bool(self._take(keys=[self.key], args=[self.cap, self.ttl_s]))

    def give_back(self) -> None:
        self.client.decr(self.key)


def _dump(candidate: Candidate) -> str:
    return json.dumps(
        [candidate.url, candidate.source, candidate.source_page, candidate.title],
        separators=(",", ":"),
    )


def _load(raw: bytes | str) -> Candidate:
    url, source, page, title = json.loads(raw)
    return Candidate(url=url, source=source, source_page=page, title=title)
