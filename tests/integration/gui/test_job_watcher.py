"""The job watcher against a real Redis: pushes, the catch-up read after a reconnect, expiry,
thumbnails, and jobs submitted by another client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from celery import Celery

from celery_core.jobs.control import submit_job
from celery_core.jobs.spec import parse_job
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import (
    JobEnded,
    JobExpired,
    JobListed,
    JobUpdated,
    ThumbnailsAdded,
    WatcherLink,
)
from pixcrawler_gui.services.jobs.watcher import JobWatcher
from tests.integration.gui.conftest import run, wait_for
from tests.integration.gui.jobs_fixtures import (
    add_thumbnail,
    job_dict,
    load_record,
    write_job_done,
    write_keyword_done,
    write_progress,
)
from tests.support.redis_proc import RedisProcess


class Seen:
    def __init__(self, hub: EventHub) -> None:
        self.events: list[Any] = []
        for kind in (JobListed, JobUpdated, JobEnded, JobExpired, ThumbnailsAdded, WatcherLink):
            hub.subscribe(kind, self.events.append)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def latest(self, job_id: str) -> Any:
        for event in reversed(self.events):
            if (
                isinstance(event, JobListed | JobUpdated | JobEnded)
                and event.progress.job_id == job_id
            ):
                return event.progress
        return None


@pytest.fixture
def watched(
    loop: qasync.QEventLoop, qtbot: Any, redis_proc: RedisProcess
) -> Iterator[tuple[JobWatcher, Seen]]:
    hub = EventHub()
    seen = Seen(hub)
    watcher = JobWatcher(hub, poll_interval=0.5, max_backoff=0.5)
    watcher.start(redis_proc.url(1))
    yield watcher, seen
    run(loop, qtbot, watcher.stop())


def _submit(app: Celery, tmp_path: Path, keywords: int = 3) -> dict[str, Any]:
    spec = parse_job(job_dict(tmp_path / "out", {"dogs": [f"dog{i}" for i in range(keywords)]}))
    return load_record(app, submit_job(app, spec.spec).job_id)


def test_pushed_progress_and_end(
    watched: tuple[JobWatcher, Seen], submitter: Celery, qtbot: Any, tmp_path: Path
) -> None:
    watcher, seen = watched
    wait_for(qtbot, lambda: watcher.connected, timeout=10)
    record = _submit(submitter, tmp_path)
    job_id = record["job_id"]
    watcher.follow(job_id, record)
    listed = wait_for(qtbot, lambda: seen.of(JobListed), timeout=10)[0]
    assert listed.progress.state == "queued" and listed.info.name == "pets"
    write_progress(submitter, record, 0, kept=2)
    wait_for(qtbot, lambda: (p := seen.latest(job_id)) and p.counts.kept == 2, timeout=5)
    assert seen.latest(job_id).state == "running"
    add_thumbnail(submitter, record, 1)
    added = wait_for(qtbot, lambda: seen.of(ThumbnailsAdded), timeout=5)
    assert [r.number for r in added[0].records] == [1]
    for index in range(3):
        write_keyword_done(submitter, record, index, kept=5)
    write_job_done(submitter, record, kept=15)
    ended = wait_for(qtbot, lambda: seen.of(JobEnded), timeout=5)[0]
    assert ended.progress.state == "finished" and ended.progress.counts.kept == 15
    assert ended.progress.summary["report"].endswith("report.md")
    assert watcher.jobs.tracked_tasks == 0  # an ended job's tasks are no longer followed


def test_catches_up_after_redis_restarts(
    watched: tuple[JobWatcher, Seen],
    submitter: Celery,
    redis_proc: RedisProcess,
    qtbot: Any,
    tmp_path: Path,
) -> None:
    watcher, seen = watched
    record = _submit(submitter, tmp_path)
    job_id = record["job_id"]
    watcher.follow(job_id, record)
    wait_for(qtbot, lambda: seen.of(JobListed), timeout=10)
    add_thumbnail(submitter, record, 1)
    wait_for(qtbot, lambda: seen.of(ThumbnailsAdded), timeout=5)
    redis_proc.stop()
    wait_for(qtbot, lambda: not watcher.connected, timeout=10)
    redis_proc.start()
    # Written while the watcher is away: no push reaches it, the catch-up read must.
    write_progress(submitter, record, 1, kept=4)
    add_thumbnail(submitter, record, 2)
    wait_for(qtbot, lambda: (p := seen.latest(job_id)) and p.counts.kept == 4, timeout=15)

    def numbers() -> list[int]:
        return [r.number for e in seen.of(ThumbnailsAdded) for r in e.records]

    wait_for(qtbot, lambda: numbers() == [1, 2], timeout=5)  # each once, none lost
    links = [link.connected for link in seen.of(WatcherLink)]
    assert False in links and links[-1] is True


def test_expired_records_and_jobs_from_elsewhere(
    watched: tuple[JobWatcher, Seen], submitter: Celery, qtbot: Any, tmp_path: Path
) -> None:
    watcher, seen = watched
    # Submitted by another client (the command line): found through the job index.
    record = _submit(submitter, tmp_path, keywords=2)
    job_id = record["job_id"]
    wait_for(qtbot, lambda: seen.latest(job_id), timeout=10)
    write_progress(submitter, record, 0, kept=1)
    wait_for(qtbot, lambda: (p := seen.latest(job_id)) and p.counts.kept == 1, timeout=5)
    client = submitter.backend.client
    client.delete(f"pixcrawler:job:{job_id}")
    expired = wait_for(qtbot, lambda: seen.of(JobExpired), timeout=5)
    assert expired[0].job_id == job_id
    assert job_id not in watcher.jobs.jobs
