"""Fixtures and helpers for the crawl form, jobs, gallery and history tests.

Task records are written with Celery's own result backend (`store_result`, what a worker's
`update_state` and return do), so the watcher reads exactly what a worker writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import qasync
from celery import Celery
from PySide6.QtCore import QObject, QSettings, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.jobs.redis_keys import ThumbnailRecord, thumb_key, thumbs_key
from celery_core.settings.celery_settings import CelerySettings
from celery_core.worker.app import create_app
from pixcrawler_gui.services.jobs.jobs_runtime import JobsRuntime
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.views.job_pages import JobPages
from pixcrawler_gui.views.main_window import MainWindow
from tests.support.image_server import ImageServer
from tests.support.redis_proc import RedisProcess
from tests.support.worker_proc import WorkerProcess


@pytest.fixture
def submitter(redis_proc: RedisProcess) -> Iterator[Celery]:
    """A job submitter's Celery app on the test's Redis (no worker unless a test starts one)."""
    settings = CelerySettings.load().updated(
        broker_url=redis_proc.url(0), result_backend=redis_proc.url(1)
    )
    app = create_app(settings, follow_results=False)
    yield app
    app.close()


def job_dict(out: Path, keywords: dict[str, list[Any]], **options: Any) -> dict[str, Any]:
    return {
        "dataset_name": "pets",
        "categories": keywords,
        "options": {"max_images": 5, "output_dir": str(out), "min_width": 50, "min_height": 50,
                    **options},
    }  # fmt: skip


def progress_meta(record: dict[str, Any], index: int, kept: int, target: int = 5) -> dict:
    item = record["tasks"][index]["item"]
    return {
        "job_id": record["job_id"],
        "category": item["category"],
        "keyword": item["keyword"],
        "chunk_index": 0,
        "chunk_count": 1,
        "counts": {"found": kept + 1, "downloaded": kept, "kept": kept, "duplicates": 1,
                   "invalid": 0, "failed": 0},
        "target": target,
        "elapsed_s": 1.0 + kept,
        "rate": 2.0,
        "thumbnails": [],
    }  # fmt: skip


def envelope(task_id: str, result: dict[str, Any]) -> dict[str, Any]:
    now = "2025-01-01T00:00:00.000+00:00"
    return {"task_id": task_id, "task_name": "pixcrawler.crawl_keyword", "status": "SUCCESS",
            "result": result, "error": None, "started_at": now, "finished_at": now,
            "duration_s": 1.0, "retries": 0, "worker": "w@host", "version": 1}  # fmt: skip


def write_progress(app: Celery, record: dict[str, Any], index: int, kept: int) -> None:
    task_id = record["tasks"][index]["id"]
    app.backend.store_result(task_id, progress_meta(record, index, kept), "PROGRESS")


def write_keyword_done(app: Celery, record: dict[str, Any], index: int, kept: int) -> None:
    task_id = record["tasks"][index]["id"]
    result = {**progress_meta(record, index, kept), "cancelled": False, "partial": False}
    app.backend.store_result(task_id, envelope(task_id, result), "SUCCESS")


def write_job_done(app: Celery, record: dict[str, Any], kept: int, state: str = "finished") -> None:
    callback = record["callback_id"]
    summary = {
        "job_id": record["job_id"],
        "state": state,
        "kept": kept,
        "duplicates": 2,
        "invalid": 0,
        "failed": 0,
        "report": str(Path(record["output_dir"]) / "report.md"),
    }
    app.backend.store_result(callback, envelope(callback, summary), "SUCCESS")  # fmt: skip


def add_thumbnail(app: Celery, record: dict[str, Any], number: int) -> ThumbnailRecord:
    """Store and announce a thumbnail as the worker's ProgressStore does."""
    client = app.backend.client
    job_id = record["job_id"]
    thumb = ThumbnailRecord(
        job_id, number, thumb_key(job_id, number), f"dogs/dog/{number:04d}.jpg", "dogs", "dog",
        96, 72,
    )  # fmt: skip
    pipe = client.pipeline()
    pipe.set(thumb.key, encode(make_picture(number, (96, 72))))
    pipe.rpush(thumbs_key(job_id), thumb.to_json())
    pipe.publish(thumbs_key(job_id), thumb.to_json())
    pipe.execute()
    return thumb


def load_record(app: Celery, job_id: str) -> dict[str, Any]:
    raw = app.backend.client.get(f"pixcrawler:job:{job_id}")
    assert raw is not None
    return dict(json.loads(raw))


@pytest.fixture
def image_site() -> Iterator[ImageServer]:
    """Twelve distinct pictures, and thirty more that take about half a second each."""
    with ImageServer() as server:
        for n in range(12):
            server.add_bytes(f"/img/{n}.jpg", encode(make_picture(n)), "image/jpeg")
        for n in range(30):
            body = encode(make_picture(500 + n))
            server.add_slow(f"/slow/{n}.jpg", body, chunk=len(body) // 10 + 1, delay=0.05)
        yield server


@pytest.fixture
def crawl_worker(celery_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A real worker (seen by the app as remote: it did not start it) that may fetch from
    127.0.0.1, where the image site runs, and nowhere else private."""
    env = {
        **celery_env,
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PIXCRAWLER_CRAWLER_TOTAL_TIMEOUT": "5",
        "PIXCRAWLER_CRAWLER_RETRY_BACKOFF": "0.05",
        "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "1",  # one download at a time: a pace to watch
    }
    with WorkerProcess(env, concurrency=2) as proc:
        proc.wait_ready()
        yield proc


def monotonic_ms() -> float:
    return time.monotonic() * 1000


@dataclass
class JobsApp:
    """The main window with its job pages on the real services, and what it opened."""

    window: MainWindow
    jobs: JobsRuntime

    @property
    def pages(self) -> JobPages:
        assert self.window.job_pages is not None
        return self.window.job_pages


class _UrlCatcher(QObject):
    """Receives the file:// URLs the app asks the desktop to open (Qt's own URL handler
    hook), so tests see them without a file manager starting."""

    def __init__(self, opened: list[str]) -> None:
        super().__init__()
        self.opened = opened

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toLocalFile())


def run(loop: qasync.QEventLoop, qtbot: Any, coro: Any, timeout: float = 30.0) -> Any:
    from tests.integration.gui.conftest import run as run_on_loop

    return run_on_loop(loop, qtbot, coro, timeout)


def open_jobs_window(
    loop: qasync.QEventLoop, qtbot: Any, services: AppServices, ui_state: QSettings
) -> JobsApp:
    jobs = JobsRuntime(services, poll_interval=1.0)
    window = MainWindow(services, ui_state, jobs)
    window.resize(1100, 720)
    window.show()
    qtbot.waitExposed(window)
    run(loop, qtbot, jobs.start())
    return JobsApp(window, jobs)


def close_jobs_window(loop: qasync.QEventLoop, qtbot: Any, app: JobsApp) -> None:
    run(loop, qtbot, app.window.stop_pages())
    run(loop, qtbot, app.jobs.shutdown())
    app.window.finish_close()
    app.window.deleteLater()


class JobsSession:
    """The app's window over the test's services, closed and opened again on demand."""

    def __init__(self, loop: qasync.QEventLoop, qtbot: Any, services: AppServices,
                 ui_state: QSettings) -> None:  # fmt: skip
        self.loop, self.qtbot, self.services, self.ui_state = loop, qtbot, services, ui_state
        self.opened: list[str] = []
        self.catcher = _UrlCatcher(self.opened)
        self.app = open_jobs_window(loop, qtbot, services, ui_state)

    def reopen(self) -> JobsApp:
        """Close the window and its history connection, and open new ones: a restart."""
        close_jobs_window(self.loop, self.qtbot, self.app)
        self.app = open_jobs_window(self.loop, self.qtbot, self.services, self.ui_state)
        return self.app

    def close(self) -> None:
        close_jobs_window(self.loop, self.qtbot, self.app)


@pytest.fixture
def jobs_session(
    loop: qasync.QEventLoop, qtbot: Any, services: AppServices, ui_state: QSettings
) -> Iterator[JobsSession]:
    """The window with New crawl, Jobs and Gallery, connected to the test's Redis."""
    run(loop, qtbot, services.start())
    session = JobsSession(loop, qtbot, services, ui_state)
    QDesktopServices.setUrlHandler("file", session.catcher, "open")
    yield session
    QDesktopServices.unsetUrlHandler("file")
    session.close()
