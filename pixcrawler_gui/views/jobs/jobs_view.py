"""The Jobs page: every crawl, running or past, with its keywords one click away; cancel,
retry what failed, open the dataset or its report, see its images, or run it again."""

from __future__ import annotations

import asyncio
import html
import logging
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QModelIndex, Qt, Signal, SignalInstance
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from pixcrawler_gui.desktop.icon import app_icon
from pixcrawler_gui.desktop.open_path import open_path
from pixcrawler_gui.models.jobs_model import COLUMNS, NAME, PROGRESS, JobRow, JobsModel
from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.presentation import job_text as words
from pixcrawler_gui.presentation import redis_text
from pixcrawler_gui.presentation.job_rows import KeywordRow, part_label
from pixcrawler_gui.presentation.worker_text import handed_back_text
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import EventHub, WorkersOnline
from pixcrawler_gui.services.jobs.job_events import (
    JobActionDone,
    JobActionFailed,
    JobSpaceLow,
    TasksHandedBack,
)
from pixcrawler_gui.views.jobs.progress_delegate import ProgressDelegate
from pixcrawler_gui.views.row_selection import select_row, selected_row
from pixcrawler_gui.views.style import label

log = logging.getLogger(__name__)
_ACTION_WORDS = {"submit": "Starting", "cancel": "Cancelling", "retry": "Retrying", "rerun": "Run"}


class JobControls(Protocol):
    async def cancel(self, job_id: str) -> bool: ...

    async def retry(self, job_id: str) -> str | None: ...

    def remove(self, job_id: str) -> bool: ...


class JobsView(QWidget):
    run_again = Signal(str)  # job id: fill the crawl form with its settings
    show_images = Signal(str)  # job id
    new_crawl = Signal()
    start_worker = Signal()  # "no worker is running": start one on this computer

    def __init__(self, hub: EventHub, controls: JobControls, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controls = controls
        self.model = JobsModel(hub, self)
        self._tasks = TaskSet()
        # Per job: its tasks a crashed worker handed back, for the details below the list.
        self._handed_back: dict[str, list[TasksHandedBack]] = {}

        title = label("Jobs", "PageTitle", self, wrap=False)
        subtitle = label(
            "Your crawls, running and past, also those started from the command line or "
            "another computer. Click the arrow next to a job to see each keyword.",
            "PageSubtitle",
            self,
        )
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the job after the images in hand; what it saved stays")
        self.retry_button = QPushButton("Retry unfinished keywords", self)
        self.retry_button.setToolTip(
            "Start a new job for the keywords that failed, were cancelled or fell short"
        )
        self.folder_button = QPushButton("Open folder", self)
        self.report_button = QPushButton("Open report", self)
        self.images_button = QPushButton("Show images", self)
        self.again_button = QPushButton("Run again…", self)
        self.again_button.setToolTip("Open this job's settings in New crawl, to change or start")
        self.remove_button = QPushButton("Remove from list", self)
        self.remove_button.setToolTip(
            "Take this finished job off the list (Delete key); its images stay in their folder"
        )
        self.toolbar = QWidget(self)
        row = QHBoxLayout(self.toolbar)
        row.setContentsMargins(0, 0, 0, 0)
        for button in (self.cancel_button, self.retry_button):
            row.addWidget(button)
        row.addSpacing(12)
        for button in (self.folder_button, self.report_button, self.images_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.remove_button)
        row.addWidget(self.again_button)
        self.feedback = label("", "Feedback", self)
        self.feedback.hide()
        self.no_worker = self._no_worker_notice()
        self._workers_online: int | None = None  # unknown until the app has looked

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self._empty_state())
        self.stack.addWidget(self._content())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 12)
        layout.addWidget(title)
        layout.addWidget(subtitle)
        layout.addSpacing(8)
        layout.addWidget(self.no_worker)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.feedback)
        layout.addWidget(self.stack, 1)

        self.cancel_button.clicked.connect(lambda: self._act(self.controls.cancel))
        self.retry_button.clicked.connect(lambda: self._act(self.controls.retry))
        self.folder_button.clicked.connect(self.open_folder)
        self.report_button.clicked.connect(self.open_report)
        self.images_button.clicked.connect(lambda: self._emit(self.show_images))
        self.again_button.clicked.connect(lambda: self._emit(self.run_again))
        self.remove_button.clicked.connect(self.remove_selected)
        remove = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.tree)
        remove.setContext(Qt.ShortcutContext.WidgetShortcut)
        remove.activated.connect(self.remove_selected)
        self.model.rowsRemoved.connect(self._rows_changed)
        self.model.rowsInserted.connect(self._rows_changed)
        self.model.modelReset.connect(self._rows_changed)
        self.model.dataChanged.connect(self._refresh)
        subscribe_for(self, hub, JobActionFailed, self._on_failed)
        subscribe_for(self, hub, JobActionDone, self._on_done)
        subscribe_for(self, hub, WorkersOnline, self._on_workers_online)
        subscribe_for(self, hub, TasksHandedBack, self._on_handed_back)
        subscribe_for(self, hub, JobSpaceLow, self._on_space_low)
        self._rows_changed()

    def _no_worker_notice(self) -> QFrame:
        frame = QFrame(self)
        frame.setObjectName("Banner")
        text = label(
            "No worker is running, so jobs wait in the queue. Start one here, or on another "
            "computer that uses the same Redis.",
            "BannerText",
            frame,
        )
        self.start_worker_button = QPushButton("Start a worker on this computer", frame)
        self.start_worker_button.clicked.connect(self.start_worker.emit)
        row = QHBoxLayout(frame)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(text, 1)
        row.addWidget(self.start_worker_button)
        frame.hide()
        return frame

    def _on_workers_online(self, event: WorkersOnline) -> None:
        self._workers_online = event.count
        self._update_notice()

    def _update_notice(self) -> None:
        waiting = any(not job.ended for job in self.model.jobs())
        self.no_worker.setVisible(self._workers_online == 0 and waiting)

    def _empty_state(self) -> QWidget:
        page = QWidget(self)
        picture = QLabel(page)
        picture.setPixmap(app_icon().pixmap(96, 96))
        self.empty_title = label("No crawls yet", "EmptyTitle", page, wrap=False)
        text = label(
            "Describe a dataset on the New crawl page and press Start: its progress shows "
            "here, and stays here after it ends.",
            "EmptyText",
            page,
        )
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setFixedWidth(440)
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(text)
        text_row.addStretch(1)
        self.empty_button = QPushButton("New crawl…", page)
        self.empty_button.setMinimumWidth(160)
        self.empty_button.clicked.connect(self.new_crawl.emit)
        column = QVBoxLayout(page)
        column.addStretch(1)
        column.addWidget(picture, 0, Qt.AlignmentFlag.AlignCenter)
        column.addSpacing(8)
        column.addWidget(self.empty_title, 0, Qt.AlignmentFlag.AlignCenter)
        column.addLayout(text_row)
        column.addSpacing(8)
        column.addWidget(self.empty_button, 0, Qt.AlignmentFlag.AlignCenter)
        column.addStretch(2)
        return page

    def _content(self) -> QWidget:
        self.tree = QTreeView(self)
        self.tree.setModel(self.model)
        self.delegate = ProgressDelegate(self.tree)
        self.tree.setItemDelegateForColumn(PROGRESS, self.delegate)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAllColumnsShowFocus(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(60)
        for column, width in enumerate((0, 185, 130, 75, 110, 85, 70, 100)):
            if column != NAME:
                self.tree.setColumnWidth(column, width)
        self.tree.selectionModel().selectionChanged.connect(self._refresh)
        self.tree.doubleClicked.connect(self._double_clicked)
        self.details = label("", "JobDetails", self)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.tree)
        # Scrolls rather than cuts off lines when the details outgrow the pane.
        self.details_area = QScrollArea(self)
        self.details_area.setWidget(self.details)
        self.details_area.setWidgetResizable(True)
        self.details_area.setFrameShape(QFrame.Shape.NoFrame)
        # Room for the usual details (name, counts, folder, report, start) and a notice or two.
        self.details_area.setMinimumHeight(self.details.fontMetrics().lineSpacing() * 8 + 12)
        splitter.addWidget(self.details_area)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        return splitter

    # -- selection -----------------------------------------------------------------------------

    def select(self, job_id: str) -> None:
        select_row(self.tree, self.model.row_of(job_id))

    def selected(self) -> JobRow | None:
        index = selected_row(self.tree)
        return self.model.job_for(index) if index is not None else None

    def _rows_changed(self) -> None:
        has_rows = self.model.rowCount() > 0
        self.stack.setCurrentIndex(1 if has_rows else 0)
        self.toolbar.setVisible(has_rows)
        if has_rows and self.selected() is None:
            select_row(self.tree, 0)
        self._refresh()

    def _refresh(self) -> None:
        job = self.selected()
        running = job is not None and not job.ended
        state = job.progress.state if job is not None else ""
        self.cancel_button.setEnabled(running and state != "cancelling")
        retryable = job is not None and job.ended and _has_retry_work(job)
        # A retry still running does that work already: a second one would only repeat it.
        if job is not None and any(not r.ended for r in self.model.retries_of(job)):
            retryable = False
        self.retry_button.setEnabled(retryable)
        for button in (self.folder_button, self.images_button, self.again_button):
            button.setEnabled(job is not None)
        self.again_button.setEnabled(job is not None and job.info.spec is not None)
        self.remove_button.setEnabled(job is not None and job.ended)
        self.report_button.setEnabled(job is not None and bool(job.progress.summary.get("report")))
        handed_back = self._handed_back.get(job.job_id, []) if job is not None else []
        paused = job is not None and self.model.paused(job)
        index = selected_row(self.tree)
        keyword = self.model.keyword_for(index) if index is not None else None
        if job is not None and keyword is not None:
            self.details.setText(_keyword_details(keyword, job))
        elif job is not None:
            self.details.setText(_details(job, handed_back, paused, self.model))
        else:
            self.details.setText("")
        self._update_notice()

    def _double_clicked(self, index: QModelIndex) -> None:
        if index.parent().isValid() or index.column() == NAME:
            return  # the arrow and the name column expand; elsewhere opens the images
        job = self.model.job_for(index)
        if job is not None:
            self.show_images.emit(job.job_id)

    # -- actions -------------------------------------------------------------------------------

    def _emit(self, signal: SignalInstance) -> None:
        job = self.selected()
        if job is not None:
            signal.emit(job.job_id)

    def remove_selected(self) -> bool:
        """Take the selected job off the list if it has ended; the next one is selected."""
        job = self.selected()
        if job is None or not job.ended:
            return False
        row = self.model.row_of(job.job_id)
        if not self.controls.remove(job.job_id):
            return False
        if self.model.rowCount() > 0:
            select_row(self.tree, min(row, self.model.rowCount() - 1))
        return True

    def _act(self, action: object) -> None:
        job = self.selected()
        if job is None:
            return
        coro = action(job.job_id)  # type: ignore[operator]
        self._tasks.spawn(coro).add_done_callback(self._action_done)

    def _action_done(self, task: asyncio.Task[object]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("a job action failed", exc_info=task.exception())
            self._say(f"That did not work: {task.exception()}")

    def open_folder(self) -> bool:
        job = self.selected()
        return job is not None and self._open(Path(job.info.output_dir), "dataset folder")

    def open_report(self) -> bool:
        job = self.selected()
        report = job.progress.summary.get("report") if job is not None else None
        return bool(report) and self._open(Path(str(report)), "report")

    def _open(self, path: Path, what: str) -> bool:
        if not path.exists():
            self._say(
                f"The {what} is not on this computer ({path}): the job ran on a worker "
                "elsewhere, or it was moved."
            )
            return False
        self.feedback.hide()
        return open_path(path, what, self)

    def _say(self, text: str) -> None:
        self.feedback.setText(text)
        self.feedback.show()

    def _on_failed(self, event: JobActionFailed) -> None:
        self._say(f"{_ACTION_WORDS.get(event.action, event.action)} failed: {event.reason}")

    def _on_space_low(self, event: JobSpaceLow) -> None:
        text = words.space_text(event.check)
        if text:
            self._say(text)

    def _on_handed_back(self, event: TasksHandedBack) -> None:
        self._handed_back.setdefault(event.job_id, []).append(event)
        job = self.selected()
        if job is not None and job.job_id == event.job_id:
            self._refresh()

    def _on_done(self, event: JobActionDone) -> None:
        self.feedback.hide()
        if event.new_job_id and event.action in ("retry", "submit"):
            self.select(event.new_job_id)


def _has_retry_work(job: JobRow) -> bool:
    keywords = job.progress.keywords
    return job.progress.state in ("failed", "cancelled", "partial", "expired") or any(
        k.unfinished for k in keywords
    )


def _details(
    job: JobRow,
    handed_back: list[TasksHandedBack] | None = None,
    paused: bool = False,
    model: JobsModel | None = None,
) -> str:
    p = job.progress
    esc = html.escape
    state = redis_text.JOB_PAUSED if paused else words.job_state_text(p, job.reason)
    name = model.job_name(job) if model is not None else job.info.name
    took = f" · {job.took}" if job.took else ""
    lines = [f"<b>{esc(name)}</b> — {esc(state)}{esc(took)}"]
    if paused:
        lines.append(f"<span style='color:{redis_text.PAUSED_COLOR}'>"
                     f"{esc(redis_text.PAUSED_WHY)}</span>")  # fmt: skip
    if job.reason and p.state != "failed":
        lines.append(f"Why: {esc(job.reason)}")
    lines.append(f"{esc(words.counts_text(p))} (target {p.target})")
    for event in handed_back or ():
        text = handed_back_text(event, job.ended)
        lines.append(f"<span style='color:{words.AMBER}'>{esc(text)}</span>")
    lines.append(f"Folder: {esc(job.info.output_dir)}")
    if p.summary.get("report"):
        lines.append(f"Report: {esc(str(p.summary['report']))}")
    failed = [k for k in p.keywords if k.state == "FAILURE"]
    for k in failed[:3]:
        lines.append(f"<span style='color:{words.RED}'>{esc(words.keyword_name(k))}: "
                     f"{esc(k.error or 'failed')}</span>")  # fmt: skip
    if len(failed) > 3:
        lines.append(f"… and {len(failed) - 3} more keywords failed")
    started = f"Started {words.when_text(job.info.submitted_at)}"
    parent = model.parent_of(job) if model is not None else None
    if parent is not None:
        started += (
            f" · a retry of “{parent.info.name}” (started "
            f"{words.when_text(parent.info.submitted_at)}): only its unfinished keywords, "
            "into the same folder"
        )
    elif job.info.parent_job:
        started += " · a retry of an earlier job"
    retries = model.retries_of(job) if model is not None else []
    if retries:
        started += (
            f" · retried {words.when_text(retries[0].info.submitted_at)} (the row below)"
            if len(retries) == 1
            else f" · retried {len(retries)} times (the rows below)"
        )
    lines.append(esc(started))
    return "<br>".join(lines)


def _keyword_details(row: KeywordRow, job: JobRow) -> str:
    """A keyword's details: its figures and, when it was cut up to spread the work, its parts."""
    esc = html.escape
    k = row.combined
    state, _ = words.keyword_state(k)
    lines = [f"<b>{esc(row.name)}</b> — {esc(state)}"]
    lines.append(
        f"{k.counts.kept} kept of {k.target} wanted, {k.counts.duplicates} duplicates, "
        f"{k.counts.failed} failed downloads, {k.counts.invalid} unusable"
    )
    if k.already_had:
        lines.append(esc(words.already_had_text(k.counts.kept, k.already_had)))
    if row.split:
        shared = next((words.shared_target_text(p) for p in row.parts if p.shared_target), None)
        why = shared or "The list was cut into parts so that several workers share the work."
        lines.append(esc(f"Worked on in {len(row.parts)} parts. {why}"))
        for part in row.parts:
            part_state, color = words.keyword_state(part)
            lines.append(
                f"&nbsp;&nbsp;{esc(part_label(part))}: {part.counts.kept} kept · "
                f"<span style='color:{color}'>{esc(part_state)}</span>"
            )
    lines += [f"Source problem: {esc(e)}" for e in k.source_errors[:3]]
    lines.append(f"Job: {esc(job.info.name)} · Folder: {esc(job.info.output_dir)}")
    return "<br>".join(lines)


__all__ = ["COLUMNS", "JobControls", "JobsView"]
