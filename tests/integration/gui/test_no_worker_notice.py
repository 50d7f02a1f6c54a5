"""A job started while no worker runs says so, and one click starts a worker that runs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import qasync
from PySide6.QtCore import QSettings, Qt

from celery_core.jobs.spec import parse_job
from celery_core.settings.celery_settings import CelerySettings
from pixcrawler_gui.models.jobs_model import STATE
from pixcrawler_gui.services.runtime import AppServices
from tests.integration.gui.conftest import run, screenshot, test_options, wait_for
from tests.integration.gui.jobs_fixtures import JobsSession, job_dict
from tests.support.image_server import ImageServer


def test_a_waiting_job_offers_to_start_a_worker(
    loop: qasync.QEventLoop,
    qtbot: Any,
    settings: CelerySettings,
    ui_state: QSettings,
    image_site: ImageServer,
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8"}
    options = test_options(tmp_path, worker_env=env)
    services = AppServices(settings, options)
    run(loop, qtbot, services.start())
    session = JobsSession(loop, qtbot, services, ui_state)
    try:
        pages = session.app.pages
        jobs = pages.jobs
        urls = [image_site.url(f"/img/{n}.jpg") for n in range(4)]
        spec = parse_job(
            job_dict(tmp_path / "out", {"dogs": [{"name": "list", "urls": urls}]})
        ).spec
        # Nothing waits yet: no notice, even with no worker anywhere.
        wait_for(qtbot, lambda: jobs._workers_online == 0, timeout=10)
        assert not jobs.no_worker.isVisible()
        pages.start(spec)
        wait_for(qtbot, lambda: session.app.window.pages.currentWidget() is jobs, timeout=15)
        wait_for(qtbot, jobs.no_worker.isVisible, timeout=10)
        screenshot(session.app.window, "27-jobs-no-worker")

        qtbot.mouseClick(jobs.start_worker_button, Qt.MouseButton.LeftButton)
        assert len(services.supervisor.workers()) == 1
        wait_for(qtbot, lambda: not jobs.no_worker.isVisible(), timeout=30)
        model = jobs.model
        wait_for(qtbot, lambda: model.data(model.index(0, STATE)) == "Finished", timeout=90)
        assert len((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()) == 4
    finally:
        session.close()
        run(loop, qtbot, services.shutdown(keep_workers=False), timeout=60)
