"""The history across restarts, with real Redis and no worker: a queued job, results that
expire before the end, a failed job keeping its reason; and the gallery's lazy loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from celery import Celery
from celery.exceptions import ChordError

from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.jobs.redis_keys import ThumbnailRecord, thumb_key, thumbs_key
from celery_core.jobs.spec import parse_job
from celery_core.worker.task_base import TaskFailed
from pixcrawler_gui.models.gallery_model import STATUS_ROLE
from pixcrawler_gui.models.pixmap_cache import PixmapCache
from tests.integration.gui.conftest import run, screenshot, wait_for
from tests.integration.gui.jobs_fixtures import JobsSession, job_dict, load_record, write_progress


def _submit(session: JobsSession, tmp_path: Path, keywords: list[str]) -> str:
    spec = parse_job(job_dict(tmp_path / "out", {"birds": keywords})).spec
    job_id = run(session.loop, session.qtbot, session.app.jobs.service.submit(spec))
    assert job_id is not None
    return str(job_id)


def test_queued_then_expired_then_listed_with_the_reason_after_a_restart(
    qtbot: Any, jobs_session: JobsSession, submitter: Celery, tmp_path: Path
) -> None:
    job_id = _submit(jobs_session, tmp_path, ["robin", "wren"])
    model = jobs_session.app.pages.jobs.model
    assert model.job(job_id).progress.state == "queued"  # type: ignore[union-attr]
    record = load_record(submitter, job_id)
    write_progress(submitter, record, 0, kept=3)  # a worker somewhere got going
    wait_for(qtbot, lambda: model.job(job_id).progress.counts.kept == 3, timeout=10)  # type: ignore[union-attr]

    app = jobs_session.reopen()
    model = app.pages.jobs.model
    row = model.job(job_id)
    assert row is not None and row.progress.state == "running" and row.progress.counts.kept == 3
    # The results expire (a long weekend away): the history keeps what was seen, and why.
    client = submitter.backend.client
    client.delete(
        f"pixcrawler:job:{job_id}", *[f"celery-task-meta-{t['id']}" for t in record["tasks"]]
    )
    wait_for(qtbot, lambda: model.job(job_id).progress.state == "expired", timeout=15)  # type: ignore[union-attr]
    app = jobs_session.reopen()
    row = app.pages.jobs.model.job(job_id)
    assert row is not None and row.progress.state == "expired" and row.progress.counts.kept == 3
    assert row.reason is not None and "expired" in row.reason
    assert app.pages.jobs.model.data(app.pages.jobs.model.index(0, 1)) == "Unknown: results expired"


def test_a_failed_job_keeps_its_reason(
    qtbot: Any, jobs_session: JobsSession, submitter: Celery, tmp_path: Path
) -> None:
    job_id = _submit(jobs_session, tmp_path, ["robin"])
    record = load_record(submitter, job_id)
    task_id = record["tasks"][0]["id"]
    envelope = {"error": {"message": "the site refused every request"}}
    # What a worker stores when the task fails, and Celery when the chord cannot finish.
    submitter.backend.mark_as_failure(task_id, TaskFailed("RuntimeError: refused", envelope))
    submitter.backend.mark_as_failure(record["callback_id"], ChordError(f"Dependency {task_id}"))
    model = jobs_session.app.pages.jobs.model
    wait_for(qtbot, lambda: model.job(job_id).progress.state == "failed", timeout=10)  # type: ignore[union-attr]
    notifier = jobs_session.app.pages.notifier
    wait_for(qtbot, lambda: notifier.sent, timeout=5)  # type: ignore[attr-defined]
    title, message, level = notifier.sent[-1]  # type: ignore[attr-defined]
    assert title == "Crawl failed: pets" and level == "error"
    assert "birds/robin failed: the site refused every request" in message

    app = jobs_session.reopen()
    row = app.pages.jobs.model.job(job_id)
    assert row is not None and row.progress.state == "failed"
    assert row.reason == "birds/robin failed: the site refused every request"
    assert row.progress.keywords[0].error == "the site refused every request"
    state = app.pages.jobs.model.data(app.pages.jobs.model.index(0, 1))
    assert state == "Failed: birds/robin failed: the site refused every request"

    # Retry after the records left Redis: the work is rebuilt from the job file kept here.
    submitter.backend.client.delete(f"pixcrawler:job:{job_id}")
    new_id = run(jobs_session.loop, qtbot, app.jobs.service.retry(job_id))
    assert new_id is not None and new_id != job_id
    retry = load_record(submitter, new_id)
    assert retry["parent_job"] == job_id
    assert [t["item"]["keyword"] for t in retry["tasks"]] == ["robin"]
    wait_for(qtbot, lambda: app.pages.jobs.model.job(new_id) is not None, timeout=10)


def test_gallery_loads_only_what_it_shows_and_keeps_a_bounded_cache(
    qtbot: Any, jobs_session: JobsSession, submitter: Celery, tmp_path: Path
) -> None:
    """A job whose worker is elsewhere: 2,000 previews in Redis, no dataset folder here."""
    job_id = _submit(jobs_session, tmp_path, ["robin", "wren"])
    client = submitter.backend.client
    jpegs = [encode(make_picture(n, (160, 120))) for n in range(20)]
    pipe = client.pipeline()
    for number in range(1, 2001):
        keyword = "robin" if number % 2 else "wren"
        path = f"birds/{keyword}/{number:04d}.jpg"
        thumb = ThumbnailRecord(
            job_id, number, thumb_key(job_id, number), path, "birds", keyword, 160, 120
        )
        pipe.set(thumb.key, jpegs[number % 20])
        pipe.rpush(thumbs_key(job_id), thumb.to_json())
    pipe.execute()

    app = jobs_session.app
    gallery = app.pages.gallery
    gallery.model.cache = PixmapCache(budget=300 * 160 * 120 * 4)  # room for 300
    app.window.show_page("gallery")
    gallery.show_job(job_id)
    wait_for(qtbot, lambda: gallery.model.rowCount() == 2000, timeout=15)
    model = gallery.model
    wait_for(qtbot, lambda: model.data(model.index(0), STATUS_ROLE) == "ready", timeout=15)
    wait_for(qtbot, lambda: not model.fetching, timeout=10)
    first_screen = model.fetched
    assert 0 < first_screen <= 150, first_screen  # a screen or so, not 2,000
    bar = gallery.view.verticalScrollBar()
    for fraction in (0.25, 0.5, 0.75, 1.0):
        before = model.fetched
        bar.setValue(int(bar.maximum() * fraction))
        wait_for(qtbot, lambda before=before: model.fetched > before, timeout=10)
        wait_for(qtbot, lambda: not model.fetching, timeout=10)
    assert model.fetched < 1000, model.fetched
    assert len(gallery.model.cache) <= 300

    gallery.set_filter("birds", "wren")
    assert gallery.filter.rowCount() == 1000
    gallery.view.setCurrentIndex(gallery.filter.index(0, 0))
    wait_for(qtbot, lambda: "worker that downloaded it" in gallery.detail.note.text(), timeout=10)
    assert not gallery.detail.open_button.isEnabled()
    assert json.dumps(gallery.count.text()) and "1000 images of 2000" in gallery.count.text()
    screenshot(app.window, "26-gallery-remote-worker")
