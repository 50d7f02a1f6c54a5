"""Controlling a running job from the Jobs view, through a restart of the app: a real worker,
slow images, Cancel, and Retry of what the cancel left undone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import qasync
from PySide6.QtCore import Qt

from celery_core.jobs.spec import parse_job
from tests.integration.gui.conftest import run, screenshot, wait_for
from tests.integration.gui.jobs_fixtures import JobsApp, JobsSession, job_dict
from tests.support.image_server import ImageServer
from tests.support.worker_proc import WorkerProcess


def _row(app: JobsApp, job_id: str) -> Any:
    return app.pages.jobs.model.job(job_id)


def test_restart_mid_job_reattaches_and_cancel_keeps_what_was_saved(
    loop: qasync.QEventLoop,
    qtbot: Any,
    jobs_session: JobsSession,
    image_site: ImageServer,
    crawl_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    out = tmp_path / "slow"
    urls = [image_site.url(f"/slow/{n}.jpg") for n in range(30)]
    job = job_dict(out, {"cats": [{"name": "slow cats", "urls": urls}]}, max_images=30)
    app = jobs_session.app
    job_id = run(loop, qtbot, app.jobs.service.submit(parse_job(job).spec))
    assert job_id is not None
    wait_for(qtbot, lambda: (r := _row(app, job_id)) and r.progress.counts.kept >= 2, timeout=60)

    # The app closes mid-job and comes back: the history lists the job, the watcher
    # follows it again from where the worker is now.
    app = jobs_session.reopen()
    seen = _row(app, job_id)
    assert seen is not None and seen.progress.state == "running"
    before = seen.progress.counts.kept
    wait_for(qtbot, lambda: _row(app, job_id).progress.counts.kept > before, timeout=30)

    view = app.pages.jobs
    app.window.show_page("jobs")
    view.select(job_id)
    assert view.cancel_button.isEnabled() and not view.retry_button.isEnabled()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: _row(app, job_id).progress.state == "cancelled", timeout=60)
    row = _row(app, job_id)
    kept = row.progress.counts.kept
    assert 2 <= kept < 30
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == kept
    assert len([p for p in out.rglob("*.jpg")]) == kept
    assert row.reason == "cancelled by you"
    assert "Why: cancelled by you" in view.details.text()
    wait_for(qtbot, lambda: app.pages.notifier.sent, timeout=10)  # type: ignore[attr-defined]
    title, message, _ = app.pages.notifier.sent[-1]  # type: ignore[attr-defined]
    assert title == "Crawl cancelled: pets" and f"{kept} images kept" in message
    screenshot(app.window, "23-jobs-cancelled")

    # Retry starts a new job for the keyword the cancel cut short; it skips what is kept.
    wait_for(qtbot, view.retry_button.isEnabled, timeout=5)
    qtbot.mouseClick(view.retry_button, Qt.MouseButton.LeftButton)
    model = view.model
    wait_for(qtbot, lambda: model.rowCount() == 2, timeout=15)
    retry = model.jobs()[1]  # listed right under the job it retries
    assert retry.info.parent_job == job_id and retry.job_id != job_id
    assert model.job_name(retry) == "↳ Retry of pets"
    wait_for(qtbot, lambda: _row(app, retry.job_id).progress.counts.kept >= kept + 1, timeout=60)
    view.select(retry.job_id)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: _row(app, retry.job_id).progress.state == "cancelled", timeout=60)
    total = len((out / "manifest.jsonl").read_text().splitlines())
    assert total == kept + _row(app, retry.job_id).progress.counts.kept  # nothing twice
