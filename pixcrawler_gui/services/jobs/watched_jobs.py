"""The watcher's memory of the jobs it follows: each task's last record and view, the thumbnails
seen, and which jobs changed since the last flush. Pure bookkeeping, no I/O.

A task record is interpreted once, when it changes (`keyword_progress`); a job is re-aggregated
from the kept views (`aggregate_job`), so a job of 1,000 tasks costs one task's work per update
plus one cheap sum, not 1,000 JSON parses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from celery_core.jobs.redis_keys import ThumbnailRecord
from celery_core.jobs.state import (
    FINAL_TASK_STATES,
    JobProgress,
    KeywordProgress,
    aggregate_job,
    keyword_progress,
)
from pixcrawler_gui.services.jobs.job_events import JobInfo

TASK_META_PREFIX = "celery-task-meta-"


def meta_key(task_id: str) -> str:
    return f"{TASK_META_PREFIX}{task_id}"


def info_from_record(record: dict[str, Any]) -> JobInfo:
    return JobInfo(
        job_id=str(record.get("job_id", "")),
        name=str(record.get("name", "")),
        output_dir=str(record.get("output_dir", "")),
        submitted_at=float(record.get("submitted_at") or time.time()),
        spec=record.get("spec"),
        parent_job=record.get("parent_job"),
    )


@dataclass
class WatchedJob:
    record: dict[str, Any]
    keywords: list[KeywordProgress]
    positions: dict[str, int]  # task id -> index in `keywords`
    callback_id: str
    raw: dict[str, bytes] = field(default_factory=dict)  # last record bytes per task id
    callback_meta: dict[str, Any] | None = None
    cancelled: bool = False
    # Thumbnail numbers seen. The list in Redis and its channel follow one order, and the
    # channel is subscribed before the list is read, so the seen ones are the list's first
    # len(thumbs_seen) entries: a resync reads on from there.
    thumbs_seen: set[int] = field(default_factory=set)
    ended: bool = False
    last: JobProgress | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WatchedJob:
        tasks = record.get("tasks", [])
        keywords = [keyword_progress(t["id"], t["item"], None) for t in tasks]
        positions = {t["id"]: i for i, t in enumerate(tasks)}
        return cls(record, keywords, positions, str(record.get("callback_id", "")))

    @property
    def job_id(self) -> str:
        return str(self.record.get("job_id", ""))

    def task_ids(self) -> list[str]:
        return [*self.positions, self.callback_id]

    def open_task_ids(self) -> list[str]:
        """Tasks whose record may still change (finished tasks never do)."""
        open_ids = [k.task_id for k in self.keywords if not k.done]
        if not _final(self.callback_meta):
            open_ids.append(self.callback_id)
        return open_ids

    def apply(self, task_id: str, raw: bytes) -> bool:
        """Take a task's record (its JSON bytes); True when the job's view may have changed."""
        if self.raw.get(task_id) == raw:
            return False
        try:
            meta = json.loads(raw)
        except ValueError:
            return False
        if not isinstance(meta, dict):
            return False
        if task_id == self.callback_id:
            if _final(self.callback_meta) and not _final(meta):
                return False
            self.raw[task_id] = raw
            self.callback_meta = meta
            return True
        position = self.positions.get(task_id)
        if position is None:
            return False
        current = self.keywords[position]
        if current.done and str(meta.get("status")) not in FINAL_TASK_STATES:
            return False  # an old record arriving late never undoes an end
        self.raw[task_id] = raw
        item = self.record["tasks"][position]["item"]
        self.keywords[position] = keyword_progress(task_id, item, meta)
        return True

    def progress(self) -> JobProgress:
        return aggregate_job(self.record, tuple(self.keywords), self.callback_meta, self.cancelled)

    @property
    def finished(self) -> bool:
        """The final step has a record: the job's figures will not change any more."""
        return _final(self.callback_meta)

    def new_thumbnails(self, raws: Iterable[bytes | str]) -> list[ThumbnailRecord]:
        fresh = []
        for raw in raws:
            try:
                record = ThumbnailRecord.from_json(raw)
            except (ValueError, TypeError):
                continue
            if record.number not in self.thumbs_seen:
                self.thumbs_seen.add(record.number)
                fresh.append(record)
        return fresh


def _final(meta: dict[str, Any] | None) -> bool:
    return bool(meta) and str(meta.get("status")) in ("SUCCESS", "FAILURE")  # type: ignore[union-attr]


class WatchedJobs:
    """Every followed job, by job id and by task id, with the set of jobs changed since the
    last flush and the thumbnails not yet handed out."""

    def __init__(self) -> None:
        self.jobs: dict[str, WatchedJob] = {}
        self.by_task: dict[str, str] = {}
        self.dirty: set[str] = set()
        self.thumbnails: dict[str, list[ThumbnailRecord]] = {}

    def add(self, record: dict[str, Any]) -> WatchedJob:
        job = WatchedJob.from_record(record)
        self.jobs[job.job_id] = job
        for task_id in job.task_ids():
            self.by_task[task_id] = job.job_id
        self.dirty.add(job.job_id)
        return job

    def drop(self, job_id: str) -> None:
        job = self.jobs.pop(job_id, None)
        if job is not None:
            for task_id in job.task_ids():
                self.by_task.pop(task_id, None)
        self.dirty.discard(job_id)
        self.thumbnails.pop(job_id, None)

    def stop_following_tasks(self, job: WatchedJob) -> None:
        """An ended job keeps its last view but its tasks leave the lookup."""
        for task_id in job.task_ids():
            self.by_task.pop(task_id, None)
        job.raw.clear()

    def apply(self, task_id: str, raw: bytes) -> None:
        job_id = self.by_task.get(task_id)
        if job_id is not None and self.jobs[job_id].apply(task_id, raw):
            self.dirty.add(job_id)

    def add_thumbnails(self, job_id: str, raws: Iterable[bytes | str]) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.ended:
            return
        fresh = job.new_thumbnails(raws)
        if fresh:
            self.thumbnails.setdefault(job_id, []).extend(fresh)

    def jobs_of_tasks(self, task_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The followed jobs these tasks belong to: job id -> its tasks among them."""
        found: dict[str, list[str]] = {}
        for task_id in task_ids:
            job_id = self.by_task.get(task_id)
            if job_id is not None:
                found.setdefault(job_id, []).append(task_id)
        return {job_id: tuple(ids) for job_id, ids in found.items()}

    def active(self) -> Iterator[WatchedJob]:
        return (job for job in self.jobs.values() if not job.ended)

    @property
    def tracked_tasks(self) -> int:
        return len(self.by_task)
