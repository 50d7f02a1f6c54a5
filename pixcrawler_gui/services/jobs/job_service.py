"""Crawl jobs for the desktop app: submit, cancel, retry, and keep the history current.

Blocking Celery and Redis calls run in the services' thread pool; following progress is the
watcher's job, keeping it is the history's. On start the history's jobs are listed and the
ones that had not ended are followed again (the app may have closed mid-job).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace as replace_info
from pathlib import Path
from typing import Any

from celery_core.crawler.dataset.space import SpaceCheck
from celery_core.jobs.control import (
    NotEnoughSpace,
    cancel_job,
    check_space,
    retry_failed,
    submit_job,
)
from celery_core.jobs.redis_keys import load_job_record
from celery_core.jobs.retry import retry_from_spec
from celery_core.jobs.spec import JobSpec
from celery_core.jobs.state import FINAL_JOB_STATES, JobProgress, JobState, job_progress
from celery_core.settings.redis_urls import mask_secrets
from pixcrawler_gui.services.events import EventHub, WorkerCrashed
from pixcrawler_gui.services.jobs.history import HIDDEN_KEPT_S, History, HistoryEntry
from pixcrawler_gui.services.jobs.job_events import (
    JobAction,
    JobActionDone,
    JobActionFailed,
    JobEnded,
    JobExpired,
    JobInfo,
    JobListed,
    JobReason,
    JobRemoved,
    JobSpaceLow,
    JobUpdated,
    TasksHandedBack,
)
from pixcrawler_gui.services.jobs.watched_jobs import info_from_record
from pixcrawler_gui.services.jobs.watcher import JobWatcher

log = logging.getLogger(__name__)

CANCELLED_HERE = "cancelled by you"
CANCELLED_ELSEWHERE = "cancelled from another program or computer"
EXPIRED_REASON = "its records expired in Redis before the app saw the end"


class JobService:
    def __init__(
        self,
        hub: EventHub,
        executor: Executor,
        history: History,
        watcher: JobWatcher | None = None,
        save_every: float = 5.0,
    ) -> None:
        self.hub = hub
        self.executor = executor
        self.history = history
        self.watcher = watcher or JobWatcher(hub)
        self.save_every = save_every
        self.app: Any = None
        self.entries: dict[str, JobInfo] = {}  # every job the history has
        self._saved: dict[str, tuple[str, float]] = {}  # job id -> (state, time) last written
        self._cancelled_here: set[str] = set()
        self.removed: set[str] = set()  # taken off the list: not listed again from Redis
        self._unsubscribe: list[Callable[[], None]] = []

    # -- life ----------------------------------------------------------------------------------

    async def load_history(self) -> list[HistoryEntry]:
        """List the history's jobs (newest first) before anything is connected."""
        entries = await self.history.entries()
        self.removed = await self.history.hidden_ids()
        for entry in reversed(entries):
            self.entries[entry.info.job_id] = entry.info
            self._saved[entry.info.job_id] = (entry.progress.state, time.monotonic())
            self.hub.publish(JobListed(entry.info, entry.progress))
        return entries

    async def start(self, celery_app: Any, result_backend: str) -> None:
        """Follow jobs in Redis: those that had not ended, and any new one in its job index."""
        if not self.entries:
            await self.load_history()
        self.app = celery_app
        subscribe = self.hub.subscribe
        self._unsubscribe = [
            subscribe(JobListed, self._on_listed),
            subscribe(JobUpdated, self._on_updated),
            subscribe(JobEnded, self._on_ended),
            subscribe(JobExpired, self._on_expired),
            subscribe(WorkerCrashed, self._on_worker_crashed),
        ]
        # Jobs taken off the list are forgotten once Redis has surely dropped their records.
        now, keep = time.time(), max(HIDDEN_KEPT_S, 2 * _seconds(celery_app.conf.result_expires))
        self.history.write(lambda store: store.prune(now, keep))
        ended = [
            j
            for j, (state, _) in self._saved.items()
            if state in FINAL_JOB_STATES and state != JobState.EXPIRED
        ]
        self.watcher.start(result_backend, known=[*ended, *self.removed])
        for job_id, (state, _) in self._saved.items():
            if state not in FINAL_JOB_STATES:
                self.watcher.follow(job_id)

    async def reconnect(self, celery_app: Any, result_backend: str) -> None:
        """New endpoints (the settings changed): follow the same jobs there."""
        await self.watcher.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.watcher = JobWatcher(self.hub, poll_interval=self.watcher.poll_interval)
        await self.start(celery_app, result_backend)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self.watcher.stop()
        await self.history.close()

    # -- actions -------------------------------------------------------------------------------

    async def submit(self, spec: JobSpec, output_dir: Path | None = None) -> str | None:
        """Queue a job; returns its id, or None (a `JobActionFailed` says why). A job that will
        clearly not fit on its disk is queued with a `JobSpaceLow`; one with next to no room
        left is refused."""
        space: SpaceCheck | None = None

        def go() -> tuple[str, dict[str, Any] | None]:
            nonlocal space
            space = check_space(spec, output_dir)
            if space is not None and space.refused:
                raise NotEnoughSpace(space)
            handle = submit_job(self._app(), spec, output_dir)
            return handle.job_id, self._record(handle.job_id)

        job_id = await self._start_job("submit", None, go)
        if job_id is not None and space is not None and not space.fits:
            self.hub.publish(JobSpaceLow(job_id, space))
        return job_id

    async def retry(self, job_id: str) -> str | None:
        """A new job for the keywords of `job_id` that failed, were cancelled or fell short."""
        entry = await self.history.read(lambda store: store.entry(job_id))
        progress = self.watcher.progress(job_id) or (entry.progress if entry else None)
        info = entry.info if entry else self.entries.get(job_id)

        def go() -> tuple[str, dict[str, Any] | None] | None:
            app = self._app()
            handle = retry_failed(app, job_id)
            if handle is None and info is not None and info.spec is not None:
                # The records expired: rebuild the work from the job file the history kept.
                handle = retry_from_spec(
                    app, info.spec, Path(info.output_dir), _to_retry(progress), job_id
                )
            if handle is None:
                return None
            return handle.job_id, self._record(handle.job_id)

        return await self._start_job("retry", job_id, go)

    async def cancel(self, job_id: str) -> bool:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, cancel_job, self._app(), job_id)
        except Exception as exc:
            self._failed("cancel", job_id, exc)
            return False
        self._cancelled_here.add(job_id)
        self._reason(job_id, CANCELLED_HERE)
        self.watcher.mark_cancelled(job_id)
        self.hub.publish(JobActionDone("cancel", job_id))
        return True

    async def _start_job(
        self,
        action: JobAction,
        job_id: str | None,
        go: Callable[[], tuple[str, dict[str, Any] | None] | None],
    ) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            started = await loop.run_in_executor(self.executor, go)
        except Exception as exc:
            self._failed(action, job_id, exc)
            return None
        if started is None:
            reason = "no keyword of this job failed, was cancelled or fell short"
            self.hub.publish(JobActionFailed(action, job_id, reason))
            return None
        new_id, record = started
        if record is not None:
            info = info_from_record(record)
            self._remember(info, job_progress(record, {}))
        self.watcher.follow(new_id, record)
        self.hub.publish(JobActionDone(action, job_id or new_id, new_id))
        return new_id

    def _app(self) -> Any:
        if self.app is None:
            raise RuntimeError("not connected to Redis yet")
        return self.app

    def _record(self, job_id: str) -> dict[str, Any] | None:
        from celery_core.jobs.control import backend_client

        with backend_client(self._app()) as client:
            return load_job_record(client, job_id)

    def _failed(self, action: JobAction, job_id: str | None, exc: BaseException) -> None:
        reason = mask_secrets(str(exc)) or type(exc).__name__
        log.warning("%s of job %s failed: %s", action, job_id, reason)
        self.hub.publish(JobActionFailed(action, job_id, reason))

    def remove(self, job_id: str) -> bool:
        """Take an ended job off the list and out of view for good; its files stay. A job
        still running is not removed (False)."""
        state, _ = self._saved.get(job_id, ("", 0.0))
        if job_id not in self.entries or state not in FINAL_JOB_STATES:
            return False
        del self.entries[job_id]
        self._saved.pop(job_id, None)
        self.removed.add(job_id)
        self.watcher.forget(job_id)
        self.history.write(lambda store: store.hide([job_id]))
        self.hub.publish(JobRemoved(job_id))
        return True

    # -- keeping the history -------------------------------------------------------------------

    def _remember(self, info: JobInfo, progress: JobProgress) -> None:
        if info.job_id in self.entries:
            return
        self.entries[info.job_id] = info
        self._saved[info.job_id] = (progress.state, time.monotonic())
        self.history.write(lambda store: store.save_job(info, progress))
        self.hub.publish(JobListed(info, progress))

    def _on_listed(self, event: JobListed) -> None:
        if event.info.job_id in self.removed:
            return
        if event.info.job_id not in self.entries:
            self._remember(event.info, event.progress)
        else:
            self._on_updated(JobUpdated(event.progress))

    def _on_updated(self, event: JobUpdated) -> None:
        progress = event.progress
        state, when = self._saved.get(progress.job_id, ("", 0.0))
        now = time.monotonic()
        if progress.state != state or now - when >= self.save_every:
            self._saved[progress.job_id] = (progress.state, now)
            self.history.write(lambda store: store.save_progress(progress))

    def _on_ended(self, event: JobEnded) -> None:
        progress = event.progress
        job_id = progress.job_id
        self._saved[job_id] = (progress.state, time.monotonic())
        finished_at = time.time()
        self.history.write(lambda store: store.save_progress(progress, finished_at))
        reason = event.reason
        if progress.state == JobState.CANCELLED and job_id not in self._cancelled_here:
            reason = reason or CANCELLED_ELSEWHERE
        if reason:
            self._reason(job_id, reason, replace=False)

    def _on_expired(self, event: JobExpired) -> None:
        job_id = event.job_id
        self._saved[job_id] = ("expired", time.monotonic())
        self.history.write(lambda store: store.mark_expired(job_id))
        self._reason(job_id, EXPIRED_REASON, replace=False)

    def _on_worker_crashed(self, event: WorkerCrashed) -> None:
        """Tell each job whose tasks the crashed worker held that they went back to the queue."""
        for job_id, task_ids in self.watcher.jobs.jobs_of_tasks(event.task_ids).items():
            self.hub.publish(
                TasksHandedBack(
                    job_id, event.node, event.at, event.exit_code, event.signal, task_ids
                )
            )

    def _reason(self, job_id: str, reason: str, replace: bool = True) -> None:
        """Keep why a job ended so; the models hear it unless an earlier reason stands."""
        info = self.entries.get(job_id)
        if info is not None and info.reason and not replace:
            return
        if info is not None:
            self.entries[job_id] = replace_info(info, reason=reason)
        self.history.write(lambda store: store.set_reason(job_id, reason, replace))
        self.hub.publish(JobReason(job_id, reason))


def _to_retry(progress: JobProgress | None) -> list[tuple[str, str]]:
    if progress is None:
        return []
    return [
        (k.category, k.keyword) for k in progress.keywords if k.unfinished or k.state == "PENDING"
    ]


def _seconds(value: Any) -> float:
    """Celery's `result_expires`: seconds, a timedelta, or None (never)."""
    if value is None:
        return 0.0
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)
