"""A dataset-wide duplicate index in Redis, shared by crawl tasks on any number of workers.

Each claim is one Lua script (atomic on the server): exact lookup by sha256, then a near
search over the hashes sharing a band value (see `dedup`), then the insert. Keys carry the
dataset id in a hash tag so they stay on one node, and every claim renews their expiry.

Layout under `pixcrawler:dedup:{<dataset id>}:`
- `sha`   hash  sha256 -> owner path
- `own`   hash  entry id -> owner path
- `ids`   hash  owner path -> "id:sha256:phash"
- `meta`  hash  next (entry id counter), bands (band count, guards against mixed thresholds)
- `b<i>`  hash  band value -> "phash:id;phash:id;..."
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from celery_core.crawler.dedup.index import (
    DEFAULT_THRESHOLD,
    DedupResult,
    band_spans,
    band_values,
    effective_threshold,
)

DEFAULT_TTL_S = 14 * 24 * 3600

# KEYS: sha, own, ids, meta, band 1..n
# ARGV: sha256, phash (16 hex), owner, threshold (-1: no check, just add), ttl ms, band count,
#       band value 1..n
_CLAIM = """
local nb = tonumber(ARGV[6])
local ttl = tonumber(ARGV[5])
local layout = redis.call('HGET', KEYS[4], 'bands')
if layout and tonumber(layout) ~= nb then
  return redis.error_reply('dedup index built with ' .. layout .. ' bands, claim uses ' .. nb)
end
local function refresh()
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local function popcount(x)
  local c = 0
  while x ~= 0 do x = bit.band(x, x - 1); c = c + 1 end
  return c
end
local function distance(a, b)
  local d = 0
  for i = 1, 16, 4 do
    d = d + popcount(bit.bxor(tonumber(string.sub(a, i, i + 3), 16),
                              tonumber(string.sub(b, i, i + 3), 16)))
  end
  return d
end
local sha, phash, owner = ARGV[1], ARGV[2], ARGV[3]
local threshold = tonumber(ARGV[4])
local existing = redis.call('HGET', KEYS[1], sha)
if existing then
  refresh()
  return {'exact', existing, 0}
end
if threshold < 0 and redis.call('HEXISTS', KEYS[3], owner) == 1 then
  return {'kept', '', 0}
end
if threshold >= 0 then
  local best_d, best_id = threshold + 1, nil
  for i = 1, nb do
    local records = redis.call('HGET', KEYS[4 + i], ARGV[6 + i])
    if records then
      for ph, id in string.gmatch(records, '(%x+):(%d+);') do
        local d = distance(ph, phash)
        if d < best_d then best_d, best_id = d, id end
      end
    end
  end
  if best_id then
    refresh()
    return {'near', redis.call('HGET', KEYS[2], best_id), best_d}
  end
end
local id = redis.call('HINCRBY', KEYS[4], 'next', 1)
redis.call('HSET', KEYS[4], 'bands', nb)
redis.call('HSET', KEYS[1], sha, owner)
redis.call('HSET', KEYS[2], id, owner)
redis.call('HSET', KEYS[3], owner, id .. ':' .. sha .. ':' .. phash)
local record = phash .. ':' .. id .. ';'
for i = 1, nb do
  local key, field = KEYS[4 + i], ARGV[6 + i]
  redis.call('HSET', key, field, (redis.call('HGET', key, field) or '') .. record)
end
refresh()
return {'kept', '', 0}
"""

# KEYS: sha, own, ids, meta, band 1..n   ARGV: owner, band value 1..n (of the stored phash)
_RELEASE = """
local entry = redis.call('HGET', KEYS[3], ARGV[1])
if not entry then return 0 end
local id, sha, phash = string.match(entry, '^(%d+):(%x+):(%x+)$')
if redis.call('HGET', KEYS[1], sha) == ARGV[1] then redis.call('HDEL', KEYS[1], sha) end
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], ARGV[1])
local record = phash .. ':' .. id .. ';'
for i = 5, #KEYS do
  local field = ARGV[i - 3]
  local records = redis.call('HGET', KEYS[i], field)
  if records then
    local s, e = string.find(records, record, 1, true)
    if s then
      local rest = string.sub(records, 1, s - 1) .. string.sub(records, e + 1)
      if rest == '' then redis.call('HDEL', KEYS[i], field)
      else redis.call('HSET', KEYS[i], field, rest) end
    end
  end
end
return 1
"""


class RedisDedupIndex:
    """`DedupIndex` stored in Redis under a dataset id, expiring `ttl_s` after the last claim."""

    def __init__(
        self,
        client: redis.Redis,
        dataset_id: str,
        threshold: int = DEFAULT_THRESHOLD,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self.client = client
        self.dataset_id = dataset_id
        self.threshold = threshold
        self.ttl_ms = int(ttl_s * 1000)
        self._spans = band_spans(threshold)
        tag = dataset_id.replace("{", "_").replace("}", "_")
        prefix = f"pixcrawler:dedup:{{{tag}}}:"
        self.keys = [prefix + name for name in ("sha", "own", "ids", "meta")] + [
            f"{prefix}b{i}" for i in range(len(self._spans))
        ]
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    def claim(
        self, sha256: str, phash: int, owner: str, threshold: int | None = None
    ) -> DedupResult:
        limit = effective_threshold(self.threshold, threshold)
        kind, other, distance = self._run(sha256, phash, owner, limit)
        if kind == "kept":
            return DedupResult(True)
        return DedupResult(False, other, "exact" if kind == "exact" else "near", distance)

    def add(self, sha256: str, phash: int, owner: str) -> None:
        self._run(sha256, phash, owner, -1)

    def add_many(self, entries: Iterable[tuple[str, int, str]], chunk: int = 500) -> int:
        """`add` for many (sha256, phash, owner) at once, pipelined."""
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for sha256, phash, owner in entries:
            self._claim(keys=self.keys, args=self._args(sha256, phash, owner, -1), client=pipe)
            count += 1
            if count % chunk == 0:
                pipe.execute()
        pipe.execute()
        return count

    def release(self, sha256: str, owner: str) -> None:
        entry = _text(self.client.hget(self.keys[2], owner))
        if not entry:
            return
        phash = int(entry.rsplit(":", 1)[1], 16)
        args = [owner, *[str(v) for v in band_values(phash, self._spans)]]
        self._release(keys=self.keys, args=args)

    def clear(self) -> None:
        """Forget every hash of this dataset."""
        self.client.delete(*self.keys)

    def __len__(self) -> int:
        return int(self.client.hlen(self.keys[2]))

    def _run(self, sha256: str, phash: int, owner: str, threshold: int) -> tuple[str, str, int]:
        reply: Sequence[Any] = self._claim(
            keys=self.keys, args=self._args(sha256, phash, owner, threshold)
        )
        return _text(reply[0]), _text(reply[1]), int(reply[2])

    def _args(self, sha256: str, phash: int, owner: str, threshold: int) -> list[str | int]:
        return [
            sha256,
            f"{phash:016x}",
            owner,
            threshold,
            self.ttl_ms,
            len(self._spans),
            *[str(v) for v in band_values(phash, self._spans)],
        ]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)
