"""What crosses Redis besides Celery's own records: job records, thumbnails and cancel flags.

Everything lives in the result backend's database and expires with the results, so a GUI on
another machine, with no shared disk, sees the same as a local one.

Keys (`<job>` is the job id):
- `pixcrawler:job:<job>`          JSON job record: name, spec, task ids, callback id, output dir
- `pixcrawler:jobs`               sorted set of job ids by submit time (for reattaching)
- `pixcrawler:cancel:<job>`       present when the job must stop: "1" when it was cancelled, a
                                  StorageFault's JSON when its dataset could not be written
                                  (disk full, folder refused): the first task to hit that sets
                                  it, and every task reads it between images, on any machine
- `pixcrawler:thumbs:<job>`       list of thumbnail records (JSON), newest last, capped
- `pixcrawler:thumb:<job>:<n>`    the JPEG bytes of thumbnail n
- channel `pixcrawler:thumbs:<job>` publishes each new thumbnail record
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from celery_core.crawler.types import StorageFault, Thumbnail

THUMBNAILS_PER_JOB = 2000
CANCEL_CHECK_INTERVAL_S = 0.5


def job_key(job_id: str) -> str:
    return f"pixcrawler:job:{job_id}"


JOBS_INDEX = "pixcrawler:jobs"


def cancel_key(job_id: str) -> str:
    return f"pixcrawler:cancel:{job_id}"


def thumbs_key(job_id: str) -> str:
    return f"pixcrawler:thumbs:{job_id}"


def thumb_key(job_id: str, number: int) -> str:
    return f"pixcrawler:thumb:{job_id}:{number}"


def thumb_counter_key(job_id: str) -> str:
    return f"pixcrawler:thumbs:{job_id}:n"


@dataclass(frozen=True)
class ThumbnailRecord:
    """Where a thumbnail's bytes are, and what they show."""

    job_id: str
    number: int
    key: str
    path: str
    category: str
    keyword: str
    width: int
    height: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> ThumbnailRecord:
        return cls(**json.loads(text))


class ProgressStore:
    """Worker-side writes: thumbnails, cancel checks. Blocking redis-py, used inside tasks."""

    def __init__(self, client: redis.Redis, expires_s: int) -> None:
        self.client = client
        self.expires_s = expires_s
        self._cancel_cache: dict[str, tuple[float, bool]] = {}

    @classmethod
    def from_url(cls, url: str, expires_s: int) -> ProgressStore:
        return cls(
            redis.Redis.from_url(url, socket_timeout=10, health_check_interval=10), expires_s
        )

    def add_thumbnails(
        self, job_id: str, category: str, keyword: str, thumbnails: tuple[Thumbnail, ...]
    ) -> list[ThumbnailRecord]:
        """Store the JPEGs and announce them; returns the records (ids go into progress meta)."""
        if not thumbnails:
            return []
        last = int(self.client.incrby(thumb_counter_key(job_id), len(thumbnails)))
        first = last - len(thumbnails) + 1
        records = []
        pipe = self.client.pipeline(transaction=False)
        for offset, thumb in enumerate(thumbnails):
            number = first + offset
            record = ThumbnailRecord(
                job_id, number, thumb_key(job_id, number), thumb.path, category, keyword,
                thumb.width, thumb.height,
            )  # fmt: skip
            records.append(record)
            if number > THUMBNAILS_PER_JOB:
                continue  # the cap: later images are still on disk, just not previewed remotely
            pipe.set(record.key, thumb.jpeg, ex=self.expires_s)
            pipe.rpush(thumbs_key(job_id), record.to_json())
            pipe.publish(thumbs_key(job_id), record.to_json())
        pipe.expire(thumbs_key(job_id), self.expires_s)
        pipe.expire(thumb_counter_key(job_id), self.expires_s)
        pipe.execute()
        return [r for r in records if r.number <= THUMBNAILS_PER_JOB]

    def is_cancelled(self, job_id: str) -> bool:
        """Cached for half a second: checked between images, it must stay cheap."""
        now = time.monotonic()
        cached = self._cancel_cache.get(job_id)
        if cached and now - cached[0] < CANCEL_CHECK_INTERVAL_S:
            return cached[1]
        try:
            value = bool(self.client.exists(cancel_key(job_id)))
        except redis.RedisError:
            value = cached[1] if cached else False
        self._cancel_cache[job_id] = (now, value)
        return value

    def stop_job(self, job_id: str, fault: StorageFault) -> None:
        """Stop every task of the job because its dataset cannot be written."""
        request_stop(self.client, job_id, fault, self.expires_s)
        self._cancel_cache[job_id] = (time.monotonic(), True)

    def stop_fault(self, job_id: str) -> StorageFault | None:
        """Why the job was stopped, when a fault stopped it (not cached)."""
        return parse_stop(self.client.get(cancel_key(job_id)))


def save_job_record(client: redis.Redis, job_id: str, record: dict[str, Any], expires: int) -> None:
    pipe = client.pipeline()
    pipe.set(job_key(job_id), json.dumps(record), ex=expires)
    pipe.zadd(JOBS_INDEX, {job_id: time.time()})
    pipe.execute()


def load_job_record(client: redis.Redis, job_id: str) -> dict[str, Any] | None:
    raw = client.get(job_key(job_id))
    return json.loads(raw) if raw else None


def request_cancel(client: redis.Redis, job_id: str, expires: int) -> None:
    client.set(cancel_key(job_id), "1", ex=expires)


def request_stop(client: redis.Redis, job_id: str, fault: StorageFault, expires: int) -> bool:
    """Raise the cancel flag with the fault as its reason; the first reason stays (a job the
    user had cancelled stays cancelled). True when this call raised it."""
    return bool(client.set(cancel_key(job_id), json.dumps(fault.to_dict()), ex=expires, nx=True))


def parse_stop(raw: bytes | str | None) -> StorageFault | None:
    """The fault in a cancel flag's value; None for a plain cancel or no flag."""
    if not raw or raw in (b"1", "1"):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return StorageFault.from_dict(data) if isinstance(data, dict) else None
