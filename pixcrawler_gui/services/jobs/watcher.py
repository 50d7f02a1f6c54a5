"""Follows crawl jobs in Redis (redis.asyncio) and hands typed events to the models.

On start and after every reconnect it subscribes first (task records and thumbnails are
published on channels), then reads every followed task's record in batches (MGET), so nothing
published while it was away is lost. From then on updates are pushed; a slow reconciling poll
re-reads the tasks still open, the cancel flags and the job index as a safety net. Updates are
coalesced: a burst of progress writes becomes at most one `JobUpdated` per job per
`flush_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.backoff import NoBackoff
from redis.retry import Retry

from celery_core.jobs.redis_keys import JOBS_INDEX, cancel_key, job_key, thumbs_key
from celery_core.settings.redis_urls import mask_secrets
from pixcrawler_gui.services.background import cancel_and_wait
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import (
    JobEnded,
    JobExpired,
    JobListed,
    JobUpdated,
    ThumbnailsAdded,
    WatcherLink,
)
from pixcrawler_gui.services.jobs.watched_jobs import (
    TASK_META_PREFIX,
    WatchedJob,
    WatchedJobs,
    info_from_record,
    meta_key,
)

log = logging.getLogger(__name__)

META_PATTERN = f"{TASK_META_PREFIX}*"
THUMBS_PREFIX = "pixcrawler:thumbs:"
_META = TASK_META_PREFIX.encode()
_THUMBS = THUMBS_PREFIX.encode()
_ERRORS = (rex.RedisError, OSError, asyncio.TimeoutError)


class JobWatcher:
    def __init__(
        self,
        hub: EventHub,
        *,
        poll_interval: float = 10.0,
        flush_interval: float = 0.05,
        batch_size: int = 250,
        max_backoff: float = 8.0,
        discover_limit: int = 50,
    ) -> None:
        self._hub = hub
        self.poll_interval = poll_interval
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.discover_limit = discover_limit
        self.jobs = WatchedJobs()
        self._pending: set[str] = set()  # job ids whose record or tasks are not read yet
        self._known: set[str] = set()  # ended jobs the app already has (not rediscovered)
        self._discovered: set[str] = set()  # found in the job index, not followed by request
        self._pushes: dict[str, int] = {}  # task id -> push count when its last push came
        self._push_count = 0
        self._task: asyncio.Task[None] | None = None
        self._client: aioredis.Redis | None = None
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()  # cuts a reconnect's backoff short
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = 0.0
        self.connected = False

    # -- control -------------------------------------------------------------------------------

    def start(self, url: str, known: Iterable[str] = ()) -> None:
        """Connect to the result backend at `url`; `known` are ended jobs not to rediscover."""
        self._known.update(known)
        self._task = asyncio.get_running_loop().create_task(self._run(url), name="job watcher")

    async def stop(self) -> None:
        # The task first: it owns the client and the subscription and closes them on the way.
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        self.connected = False

    def reconnect_now(self) -> None:
        """Redis is back (the app's own server started again): reconnect without waiting out
        the backoff."""
        self._retry.set()

    def follow(self, job_id: str, record: dict[str, Any] | None = None) -> None:
        """Follow a job; with its record, its tasks are matched from the first push on."""
        # Followed on purpose: its end and expiry count, even if the index scan found it first.
        self._discovered.discard(job_id)
        if job_id in self.jobs.jobs:
            return
        self._known.discard(job_id)
        if record is not None:
            self.jobs.add(record)
        self._pending.add(job_id)
        self._wake.set()

    def forget(self, job_id: str) -> None:
        """Stop watching a job and never list it again, even if Redis still has it."""
        self.jobs.drop(job_id)
        self._pending.discard(job_id)
        self._discovered.discard(job_id)
        self._known.add(job_id)

    def mark_cancelled(self, job_id: str) -> None:
        job = self.jobs.jobs.get(job_id)
        if job is not None and not job.cancelled:
            job.cancelled = True
            self._changed(job_id)

    def progress(self, job_id: str) -> Any:
        job = self.jobs.jobs.get(job_id)
        return job.last if job is not None else None

    @property
    def client(self) -> aioredis.Redis | None:
        """The connected client (None while reconnecting), for reads such as thumbnails."""
        return self._client if self.connected else None

    # -- the connection ------------------------------------------------------------------------

    async def _run(self, url: str) -> None:
        backoff = 0.5
        while True:
            client = aioredis.Redis.from_url(
                url,
                socket_timeout=15,
                socket_connect_timeout=5,
                health_check_interval=15,
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            reason = "closed"
            try:
                await pubsub.psubscribe(META_PATTERN, f"{THUMBS_PREFIX}*")
                self._client = client
                await self._sync(client, full=True)
                self._set_link(True)
                backoff = 0.5
                await _first_failure(self._listen(pubsub), self._poll(client))
            except _ERRORS as exc:
                reason = mask_secrets(str(exc)) or type(exc).__name__
            finally:
                self._client = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            self._set_link(False, reason)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._retry.wait()
            self._retry.clear()
            backoff = min(self.max_backoff, backoff * 2)

    def _set_link(self, connected: bool, reason: str | None = None) -> None:
        if connected != self.connected or not connected:
            self.connected = connected
            self._hub.publish(WatcherLink(connected, self.jobs.tracked_tasks, reason))

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "pmessage":
                continue
            channel: bytes = message["channel"]
            data: bytes = message["data"]
            if channel.startswith(_META):
                task_id = channel[len(_META) :].decode()
                if task_id in self.jobs.by_task:
                    self._push_count += 1
                    self._pushes[task_id] = self._push_count
                    self._apply(task_id, data)
            elif channel.startswith(_THUMBS):
                job_id = channel[len(_THUMBS) :].decode()
                if job_id in self.jobs.jobs:
                    self.jobs.add_thumbnails(job_id, [data])
                    self._changed(job_id)

    async def _poll(self, client: aioredis.Redis) -> None:
        next_full = time.monotonic() + self.poll_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_full - time.monotonic())):
                    await self._wake.wait()
            self._wake.clear()
            if time.monotonic() >= next_full:
                await self._sync(client, full=True)
                next_full = time.monotonic() + self.poll_interval
            elif self._pending:
                await self._sync(client, full=False)

    # -- reading -------------------------------------------------------------------------------

    async def _sync(self, client: aioredis.Redis, full: bool) -> None:
        """Read what pushes may have missed: new jobs, open tasks, cancel flags, thumbnails."""
        if full:
            await self._discover(client)
        pending, self._pending = self._pending, set()
        try:
            await self._load_records(client, pending)
            jobs = list(self.jobs.active()) if full else [
                j for j in self.jobs.active() if j.job_id in pending
            ]  # fmt: skip
            if full:
                await self._check_records(client, jobs)
                jobs = list(self.jobs.active())
            await self._read_tasks(client, jobs)
            await self._read_flags_and_thumbnails(client, jobs)
        except BaseException:
            self._pending |= pending  # read them again after the reconnect
            raise
        self._flush()

    async def _discover(self, client: aioredis.Redis) -> None:
        """Jobs submitted elsewhere (the command line, another computer) show up too."""
        ids: list[Any] = list(await client.zrevrange(JOBS_INDEX, 0, self.discover_limit - 1))
        for raw in ids:
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if job_id not in self.jobs.jobs and job_id not in self._known | self._pending:
                self._pending.add(job_id)
                self._discovered.add(job_id)

    async def _load_records(self, client: aioredis.Redis, job_ids: set[str]) -> None:
        missing = sorted(j for j in job_ids if j not in self.jobs.jobs)
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            raws = await client.mget([job_key(j) for j in batch])
            for job_id, raw in zip(batch, raws, strict=True):
                if raw is None:
                    self._known.add(job_id)
                    if job_id not in self._discovered:
                        self._hub.publish(JobExpired(job_id))
                    continue
                self.jobs.add(json.loads(raw))
            await asyncio.sleep(0)  # let the GUI breathe between batches

    async def _check_records(self, client: aioredis.Redis, jobs: list[WatchedJob]) -> None:
        """A job whose record left Redis has expired: the history keeps what was seen."""
        if not jobs:
            return
        found = await client.exists(*[job_key(j.job_id) for j in jobs])
        if found == len(jobs):
            return
        pipe = client.pipeline(transaction=False)
        for job in jobs:
            pipe.exists(job_key(job.job_id))
        for job, exists in zip(jobs, await pipe.execute(), strict=True):
            if not exists:
                self.jobs.drop(job.job_id)
                self._known.add(job.job_id)
                self._hub.publish(JobExpired(job.job_id))

    async def _read_tasks(self, client: aioredis.Redis, jobs: list[WatchedJob]) -> None:
        ids = [task_id for job in jobs for task_id in job.open_task_ids()]
        for start in range(0, len(ids), self.batch_size):
            batch = ids[start : start + self.batch_size]
            sent_at = self._push_count
            raws = await client.mget([meta_key(t) for t in batch])
            for task_id, raw in zip(batch, raws, strict=True):
                # A push that came after the MGET was sent is at least as new as its reply.
                if raw is not None and self._pushes.get(task_id, -1) <= sent_at:
                    self._apply(task_id, raw if isinstance(raw, bytes) else raw.encode())
            await asyncio.sleep(0)

    async def _read_flags_and_thumbnails(
        self, client: aioredis.Redis, jobs: list[WatchedJob]
    ) -> None:
        if not jobs:
            return
        pipe = client.pipeline(transaction=False)
        for job in jobs:
            pipe.exists(cancel_key(job.job_id))
            pipe.lrange(thumbs_key(job.job_id), len(job.thumbs_seen), -1)
        replies = await pipe.execute()
        for index, job in enumerate(jobs):
            cancelled, thumbs = replies[2 * index], replies[2 * index + 1]
            if cancelled and not job.cancelled:
                job.cancelled = True
                self.jobs.dirty.add(job.job_id)
            if thumbs:
                self.jobs.add_thumbnails(job.job_id, thumbs)
                self.jobs.dirty.add(job.job_id)

    # -- handing out ---------------------------------------------------------------------------

    def _apply(self, task_id: str, raw: bytes) -> None:
        job_id = self.jobs.by_task.get(task_id)
        self.jobs.apply(task_id, raw)
        if job_id is not None and job_id in self.jobs.dirty:
            self._schedule_flush()

    def _changed(self, job_id: str) -> None:
        self.jobs.dirty.add(job_id)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + self.flush_interval - time.monotonic())
        self._flush_handle = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._last_flush = time.monotonic()
        dirty, self.jobs.dirty = self.jobs.dirty, set()
        for job_id in dirty:
            job = self.jobs.jobs.get(job_id)
            if job is None:
                continue
            thumbnails = self.jobs.thumbnails.pop(job_id, None)
            if thumbnails:
                self._hub.publish(ThumbnailsAdded(job_id, tuple(thumbnails)))
            if job.ended:
                continue
            progress = job.progress()
            first = job.last is None
            if progress == job.last:
                continue
            job.last = progress
            if first:
                self._hub.publish(JobListed(info_from_record(job.record), progress))
            else:
                self._hub.publish(JobUpdated(progress))
            if job.finished:
                job.ended = True
                self._known.add(job_id)
                self.jobs.stop_following_tasks(job)
                # A job found in the index that had ended before is listed, not announced.
                if not (first and job_id in self._discovered):
                    self._hub.publish(JobEnded(progress, progress.error))


async def _first_failure(*coros: Any) -> None:
    """Run until one of `coros` fails (they run forever otherwise); cancel the others."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        await cancel_and_wait(*tasks)
    for task in done:
        exc = task.exception()
        if exc is not None:
            raise exc
