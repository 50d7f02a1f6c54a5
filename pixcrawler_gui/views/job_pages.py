"""The New crawl, Jobs and Gallery pages, and how they hand work to each other: Start submits
and shows the job; Run again fills the form; Show images opens the gallery on the job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from celery_core.jobs.spec import JobSpec
from pixcrawler_gui.desktop.icon import app_icon
from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import JobActionFailed
from pixcrawler_gui.services.jobs.thumbnail_loader import ThumbnailLoader
from pixcrawler_gui.views.crawl_form.crawl_form import CrawlForm
from pixcrawler_gui.views.gallery.gallery import GalleryPage
from pixcrawler_gui.views.jobs.jobs_view import JobsView
from pixcrawler_gui.views.jobs.notifications import JobNotifications, Notifier, TrayNotifier

PAGE_STYLE = """
QLabel#SectionTitle { font-weight: 600; }
QLabel#Hint { color: #5f6670; }
QLabel#FormSummary { color: #5f6670; }
QLabel#Feedback { color: #d03b3b; }
QLabel#JobDetails { padding: 6px 2px; }
QLabel#Preview { background: #f2f4f7; border-radius: 4px; }
QGroupBox { font-weight: 600; }
QGroupBox QLabel, QGroupBox QCheckBox, QGroupBox QRadioButton { font-weight: normal; }
"""


class JobControls(Protocol):
    """What the pages need from the job service."""

    async def submit(self, spec: JobSpec, output_dir: Path | None = None) -> str | None: ...

    async def cancel(self, job_id: str) -> bool: ...

    async def retry(self, job_id: str) -> str | None: ...

    def remove(self, job_id: str) -> bool: ...


class JobsBackend(Protocol):
    @property
    def hub(self) -> EventHub: ...

    @property
    def service(self) -> JobControls: ...

    @property
    def loader(self) -> ThumbnailLoader: ...


class JobPages(QObject):
    def __init__(
        self,
        backend: JobsBackend,
        show_page: Callable[[str], None],
        parent: QWidget,
        notifier: Notifier | None = None,
    ) -> None:
        super().__init__(parent)
        self.backend = backend
        self.show_page = show_page
        self._tasks = TaskSet()
        hub = backend.hub
        self.form = CrawlForm(parent)
        self.jobs = JobsView(hub, backend.service, parent)
        self.gallery = GalleryPage(hub, backend.loader, self.jobs.model, parent)
        for page in (self.form, self.jobs, self.gallery):
            page.setStyleSheet(PAGE_STYLE)
        self.notifier: Notifier = notifier or TrayNotifier(app_icon(), self)
        self.notifications = JobNotifications(hub, self.notifier, self)

        self.form.start_requested.connect(self.start)
        self.jobs.run_again.connect(self.run_again)
        self.jobs.show_images.connect(self.show_images)
        self.gallery.run_again.connect(self.run_again)
        self.jobs.new_crawl.connect(lambda: self.show_page("crawl"))
        subscribe_for(self, hub, JobActionFailed, self._on_failed)

    def start(self, spec: JobSpec) -> None:
        self.form.start_button.setEnabled(False)
        self._tasks.spawn(self._start(spec))

    async def _start(self, spec: JobSpec) -> None:
        try:
            job_id = await self.backend.service.submit(spec)
        finally:
            self.form.check_now()  # Start comes back (the same job can be started again)
        if job_id is not None:
            self.jobs.select(job_id)
            self.gallery.show_job(job_id)
            self.show_page("jobs")

    def run_again(self, job_id: str) -> None:
        row = self.jobs.model.job(job_id)
        if row is None or row.info.spec is None:
            return
        if self.form.load_job_dict(row.info.spec, row.info.output_dir):
            self.show_page("crawl")

    def show_images(self, job_id: str) -> None:
        self.gallery.show_job(job_id)
        self.show_page("gallery")

    def import_file(self, path: Path) -> bool:
        """A job file dropped on the window: into the form, which shows any problem."""
        self.show_page("crawl")
        return self.form.import_file(path)

    def _on_failed(self, event: JobActionFailed) -> None:
        if event.action == "submit":
            self.form.show_start_problem(event.reason)

    async def stop(self) -> None:
        await self._tasks.close()
        await self.gallery.stop()
