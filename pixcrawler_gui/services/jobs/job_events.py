"""Typed events about crawl jobs, from the watcher, the job service and the history.

Like the worker events, they carry facts (a `JobProgress` as `celery_core.jobs.state` reads it,
thumbnail records, reasons), never text laid out for a widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from celery_core.crawler.dataset.space import SpaceCheck
from celery_core.jobs.redis_keys import ThumbnailRecord
from celery_core.jobs.state import JobProgress

JobAction = Literal["submit", "cancel", "retry", "rerun"]


@dataclass(frozen=True)
class JobInfo:
    """What is known about a job besides its progress: where it came from and where it goes."""

    job_id: str
    name: str
    output_dir: str
    submitted_at: float
    spec: dict[str, Any] | None = None  # the job file (URL lists inline), to run it again
    parent_job: str | None = None  # set on a retry of another job's failed keywords
    finished_at: float | None = None
    reason: str | None = None  # why it failed or was cancelled, kept in the history


@dataclass(frozen=True)
class JobListed:
    """A job to show: from the history at start, just submitted, or found in Redis."""

    info: JobInfo
    progress: JobProgress


@dataclass(frozen=True)
class JobUpdated:
    """Where a followed job stands now (coalesced: at most a few per second per job)."""

    progress: JobProgress


@dataclass(frozen=True)
class JobEnded:
    """A job reached its end (finished, partial, cancelled or failed), seen once per job."""

    progress: JobProgress
    reason: str | None = None


@dataclass(frozen=True)
class JobReason:
    """Why a job ended as it did (failed, cancelled, expired), as the history keeps it."""

    job_id: str
    reason: str


@dataclass(frozen=True)
class JobExpired:
    """The job's records left Redis before it was seen to end; the history has the rest."""

    job_id: str


@dataclass(frozen=True)
class JobRemoved:
    """An ended job was taken off the list (its files stay where they are)."""

    job_id: str


@dataclass(frozen=True)
class TasksHandedBack:
    """Tasks of a job were held by a local worker that crashed; they went back to the queue
    and run again (from the `WorkerCrashed` event, matched on task ids)."""

    job_id: str
    node: str
    at: float  # when the worker stopped (time.time())
    exit_code: int | None
    signal: int | None
    task_ids: tuple[str, ...]


@dataclass(frozen=True)
class JobSpaceLow:
    """A job was submitted although its images will clearly not fit on the dataset's disk
    (an estimate, measured on this computer before submitting): it stops when the disk is full."""

    job_id: str
    check: SpaceCheck


@dataclass(frozen=True)
class ThumbnailsAdded:
    """New thumbnails of a job, in Redis (bytes at `record.key`)."""

    job_id: str
    records: tuple[ThumbnailRecord, ...]


@dataclass(frozen=True)
class WatcherLink:
    """Whether the watcher follows Redis right now, and how many tasks it tracks."""

    connected: bool
    tracked_tasks: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class JobActionFailed:
    """Submitting, cancelling or retrying did not work; `reason` says why."""

    action: JobAction
    job_id: str | None
    reason: str


@dataclass(frozen=True)
class JobActionDone:
    """An action went through; for a retry or a rerun, `new_job_id` is the job it started."""

    action: JobAction
    job_id: str
    new_job_id: str | None = None
