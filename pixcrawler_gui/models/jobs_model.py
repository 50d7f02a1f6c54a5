"""The jobs table: one row per job (newest first), its keywords as child rows.

A keyword cut into parts (a long URL list, a website) is one child row with the parts
combined (`presentation.job_rows`). A retry of a job is listed right below that job, named as
its retry. An ended job shows how long it took and its average rate.

Fed by the job events (history at start, the watcher while jobs run). Each job gets a serial
number at insertion; child indexes carry it as their internal id, so they stay valid while
new jobs are inserted above. While the watcher cannot reach Redis (`WatcherLink`), jobs that
have not ended show as paused, without a rate or time left that would no longer be true.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from celery_core.jobs.state import RUNNING_JOB_STATES, JobProgress, JobState
from pixcrawler_gui.models.icons import dot_icon
from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.presentation import job_text as words
from pixcrawler_gui.presentation import redis_text
from pixcrawler_gui.presentation.job_rows import (
    KeywordRow,
    average_rate_text,
    job_duration,
    keyword_rows,
    took_text,
)
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import (
    JobEnded,
    JobExpired,
    JobInfo,
    JobListed,
    JobReason,
    JobRemoved,
    JobUpdated,
    WatcherLink,
)

COLUMNS = (
    "Job", "State", "Images kept", "Images/s", "Time left", "Duplicates", "Failures", "Started",
)  # fmt: skip
NAME, STATE, PROGRESS, RATE, ETA, DUPLICATES, FAILURES, STARTED = range(len(COLUMNS))
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1  # (kept, target, state colour, text)
JOB_ID_ROLE = Qt.ItemDataRole.UserRole + 2
_Index = QModelIndex | QPersistentModelIndex
_KEYWORD_ENDED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


@dataclass(eq=False)  # rows are compared by identity: `list.index` must not compare jobs
class JobRow:
    serial: int
    info: JobInfo
    progress: JobProgress
    reason: str | None = None
    _rows: tuple[KeywordRow, ...] = field(default=(), repr=False)
    _rows_of: JobProgress | None = field(default=None, repr=False)

    @property
    def job_id(self) -> str:
        return self.info.job_id

    @property
    def keywords(self) -> tuple[KeywordRow, ...]:
        """One row per keyword, its parts combined (worked out again when progress changes)."""
        if self._rows_of is not self.progress:
            self._rows = keyword_rows(self.progress.keywords)
            self._rows_of = self.progress
        return self._rows

    @property
    def duration_s(self) -> float | None:
        """How long the ended job took; None while it runs."""
        if not self.ended:
            return None
        return job_duration(self.progress, self.info.submitted_at, self.info.finished_at)

    @property
    def took(self) -> str | None:
        """Like "took 2 min 10 s · 4.6 images/s" once it ended, when that is known."""
        return took_text(self.duration_s, self.progress.counts.kept)

    @property
    def ended(self) -> bool:
        return self.progress.state in words.FINAL_JOB_STATES


class JobsModel(QAbstractItemModel):
    def __init__(self, hub: EventHub, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[JobRow] = []
        self._by_id: dict[str, JobRow] = {}
        self._by_serial: dict[int, JobRow] = {}
        self._serial = 0
        self.redis_reachable = True  # as the watcher last found it
        subscribe_for(self, hub, JobListed, self.on_listed)
        subscribe_for(self, hub, JobUpdated, lambda e: self._update(e.progress))
        subscribe_for(self, hub, JobEnded, self.on_ended)
        subscribe_for(self, hub, JobReason, self.on_reason)
        subscribe_for(self, hub, JobExpired, self.on_expired)
        subscribe_for(self, hub, JobRemoved, self.on_removed)
        subscribe_for(self, hub, WatcherLink, self.on_link)

    # -- structure -----------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if parent.isValid():
            job = self._job_at(parent)
            if job is None or parent.internalId() != 0:
                return QModelIndex()
            if 0 <= row < len(job.keywords):
                return self.createIndex(row, column, job.serial)
            return QModelIndex()
        if 0 <= row < len(self._rows):
            return self.createIndex(row, column, 0)
        return QModelIndex()

    def parent(self, child: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not child.isValid() or child.internalId() == 0:
            return QModelIndex()
        job = self._by_serial.get(child.internalId())
        if job is None:
            return QModelIndex()
        return self.createIndex(self._rows.index(job), 0, 0)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._rows)
        if parent.internalId() != 0 or parent.column() != 0:
            return 0
        job = self._job_at(parent)
        return len(job.keywords) if job is not None else 0

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def _job_at(self, index: _Index) -> JobRow | None:
        if index.internalId() != 0:
            return self._by_serial.get(index.internalId())
        return self._rows[index.row()] if 0 <= index.row() < len(self._rows) else None

    # -- data ----------------------------------------------------------------------------------

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self._job_at(index)
        if job is None:
            return None
        if role == JOB_ID_ROLE:
            return job.job_id
        if index.internalId() == 0:
            return self._job_data(job, index.column(), role)
        keywords = job.keywords
        if index.row() >= len(keywords):
            return None
        return self._keyword_data(keywords[index.row()], job, index.column(), role)

    def paused(self, job: JobRow) -> bool:
        """Whether the job waits for Redis to answer (it has not ended and Redis is away)."""
        return not self.redis_reachable and not job.ended

    def state_text(self, job: JobRow) -> str:
        if self.paused(job):
            return redis_text.JOB_PAUSED
        return words.job_state_text(job.progress, job.reason)

    def _job_data(self, job: JobRow, column: int, role: int) -> Any:
        p = job.progress
        paused = self.paused(job)
        color = redis_text.PAUSED_COLOR if paused else words.job_state_color(p.state)
        if role == Qt.ItemDataRole.DisplayRole:
            running = p.state in RUNNING_JOB_STATES and not paused
            duration = job.duration_s
            return {
                NAME: self.job_name(job),
                STATE: self.state_text(job),
                PROGRESS: words.job_progress_text(p),
                RATE: average_rate_text(p.counts.kept, duration)
                if job.ended
                else words.rate_text(p.rate, running),
                ETA: f"took {words.duration_text(duration)}"
                if job.ended and duration is not None
                else words.duration_text(p.eta_s)
                if running
                else "—",
                DUPLICATES: str(p.counts.duplicates),
                FAILURES: str(p.counts.failed + p.counts.invalid),
                STARTED: words.when_text(job.info.submitted_at),
            }.get(column)
        if role == PROGRESS_ROLE:
            return (p.in_folder, p.target, color, words.job_progress_text(p))
        if role == Qt.ItemDataRole.DecorationRole and column == STATE:
            return dot_icon(color)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._job_tooltip(job, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE and p.state == "failed":
            return QColor(words.RED)
        return None

    def _job_tooltip(self, job: JobRow, column: int) -> str:
        p = job.progress
        if column == FAILURES:
            return (
                f"{p.counts.failed} downloads failed, "
                f"{p.counts.invalid} files were not usable images"
            )
        lines = [f"{self.job_name(job)} — {self.state_text(job)}"]
        if job.took:
            lines.append(job.took.capitalize())
        if self.paused(job):
            lines.append(redis_text.PAUSED_WHY)
        if job.reason and p.state != "failed":
            lines.append(f"Why: {job.reason}")
        if p.already_had:
            lines.append(words.already_had_text(p.counts.kept, p.already_had))
        lines.append(f"Folder: {job.info.output_dir}")
        return "\n".join(lines)

    def _keyword_data(self, row: KeywordRow, job: JobRow, column: int, role: int) -> Any:
        k = row.combined
        text, color = words.keyword_state(k)
        paused = self.paused(job) and k.state not in _KEYWORD_ENDED
        if paused:
            text, color = redis_text.KEYWORD_PAUSED, redis_text.PAUSED_COLOR
        if role == Qt.ItemDataRole.DisplayRole:
            running = k.state in ("PROGRESS", "STARTED") and not paused
            return {
                NAME: row.name,
                STATE: text,
                PROGRESS: words.keyword_progress_text(k),
                RATE: words.rate_text(k.rate, running),
                ETA: words.duration_text(max(0, k.target - k.in_folder) / k.rate)
                if running and k.rate > 0
                else "—",
                DUPLICATES: str(k.counts.duplicates),
                FAILURES: str(k.counts.failed + k.counts.invalid),
                STARTED: "",
            }.get(column)
        if role == PROGRESS_ROLE:
            return (k.in_folder, k.shown_target, color, words.keyword_progress_text(k))
        if role == Qt.ItemDataRole.DecorationRole and column == STATE:
            return dot_icon(color)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{row.name}: {text}"]
            if row.split:
                lines.append(
                    f"Worked on in {len(row.parts)} parts at once; select it to see each part"
                )
            if k.already_had:
                lines.append(words.already_had_text(k.counts.kept, k.already_had))
            lines += [f"Source problem: {e}" for e in k.source_errors]
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and k.state == "FAILURE":
            return QColor(words.RED)
        return None

    # -- lookups -------------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRow | None:
        return self._by_id.get(job_id)

    def job_for(self, index: _Index) -> JobRow | None:
        return self._job_at(index) if index.isValid() else None

    def keyword_for(self, index: _Index) -> KeywordRow | None:
        """The keyword row at `index`, or None for a job's row."""
        if not index.isValid() or index.internalId() == 0:
            return None
        job = self._job_at(index)
        if job is None or index.row() >= len(job.keywords):
            return None
        return job.keywords[index.row()]

    def parent_of(self, job: JobRow) -> JobRow | None:
        """The job this one retries, when it is on the list."""
        return self._by_id.get(job.info.parent_job) if job.info.parent_job else None

    def retries_of(self, job: JobRow) -> list[JobRow]:
        """The retries of `job` on the list, newest first."""
        return [r for r in self._rows if r.info.parent_job == job.job_id]

    def job_name(self, job: JobRow) -> str:
        """A retry is named as one, so it is not taken for a second copy of its job."""
        parent = self.parent_of(job)
        return f"↳ Retry of {parent.info.name}" if parent is not None else job.info.name

    def root_of(self, job: JobRow) -> JobRow:
        """The first job of a chain of retries (the job itself when it is no retry)."""
        seen = {job.job_id}
        while (parent := self.parent_of(job)) is not None and parent.job_id not in seen:
            seen.add(parent.job_id)
            job = parent
        return job

    def gallery_choices(self, asked: str | None = None) -> list[tuple[str, str, set[str]]]:
        """The jobs whose images a gallery can show, newest first: (text, the newest job id of
        it, every job id of it). A job and its retries keep their images in one folder, so
        they are one choice; a job with no images yet is left out, unless it is `asked` for
        (Show images on a job that just started)."""
        families: dict[str, list[JobRow]] = {}
        for job in self._rows:
            families.setdefault(self.root_of(job).job_id, []).append(job)
        choices = []
        for root_id, members in families.items():
            root = self._by_id[root_id]
            images = max(m.progress.in_folder for m in members)
            if images <= 0 and all(m.job_id != asked for m in members):
                continue
            newest = max(members, key=lambda m: m.info.submitted_at)
            when = words.when_text(root.info.submitted_at)
            text = f"{root.info.name} — {when}"
            choices.append((text, newest.job_id, {m.job_id for m in members}))
        return choices

    def row_of(self, job_id: str) -> int:
        job = self._by_id.get(job_id)
        return self._rows.index(job) if job is not None else -1

    def jobs(self) -> list[JobRow]:
        return list(self._rows)

    # -- events --------------------------------------------------------------------------------

    def on_removed(self, event: JobRemoved) -> None:
        job = self._by_id.get(event.job_id)
        if job is None:
            return
        row = self._rows.index(job)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        del self._by_id[job.job_id]
        del self._by_serial[job.serial]
        self.endRemoveRows()

    def on_listed(self, event: JobListed) -> None:
        job = self._by_id.get(event.info.job_id)
        if job is not None:
            if event.info.reason and not job.reason:
                job.reason = event.info.reason
            job.info = replace(event.info, reason=job.reason or event.info.reason)
            self._update(event.progress)
            return
        self._serial += 1
        job = JobRow(self._serial, event.info, event.progress, event.info.reason)
        parent = self._by_id.get(job.info.parent_job) if job.info.parent_job else None
        if parent is not None:  # a retry: right below its job, the newest retry first
            position = self._rows.index(parent) + 1
        else:  # newest first, a job's retries kept below it
            position = 0
            while position < len(self._rows) and (
                self._rows[position].info.parent_job in self._by_id
                or self._rows[position].info.submitted_at > job.info.submitted_at
            ):
                position += 1
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.insert(position, job)
        self._by_id[job.job_id] = job
        self._by_serial[job.serial] = job
        self.endInsertRows()

    def on_ended(self, event: JobEnded) -> None:
        job = self._by_id.get(event.progress.job_id)
        if job is not None and event.reason and not job.reason:
            job.reason = event.reason
        if job is not None and job.info.finished_at is None:
            job.info = replace(job.info, finished_at=time.time())  # as the history keeps it
        self._update(event.progress)

    def on_reason(self, event: JobReason) -> None:
        job = self._by_id.get(event.job_id)
        if job is not None:
            job.reason = event.reason
            self._changed(job)

    def on_link(self, event: WatcherLink) -> None:
        """Redis went away or came back: every job that has not ended is shown again."""
        if event.connected == self.redis_reachable:
            return
        self.redis_reachable = event.connected
        for job in self._rows:
            if job.ended:
                continue
            self._changed(job)
            count = len(job.keywords)
            if count:
                parent = self.index(self._rows.index(job), 0)
                self.dataChanged.emit(
                    self.index(0, 0, parent), self.index(count - 1, len(COLUMNS) - 1, parent)
                )

    def on_expired(self, event: JobExpired) -> None:
        job = self._by_id.get(event.job_id)
        if job is not None and not job.ended:
            self._update(replace(job.progress, state=JobState.EXPIRED, rate=0.0, eta_s=None))

    def _update(self, progress: JobProgress) -> None:
        job = self._by_id.get(progress.job_id)
        if job is None:
            return
        old = job.keywords
        new = keyword_rows(progress.keywords)
        parent = self.index(self._rows.index(job), 0)
        if len(old) != len(new):
            if old:
                self.beginRemoveRows(parent, 0, len(old) - 1)
                job.progress = replace(job.progress, keywords=())
                self.endRemoveRows()
            if new:
                self.beginInsertRows(parent, 0, len(new) - 1)
                job.progress = progress
                self.endInsertRows()
        changed = [i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b]
        job.progress = progress
        self._changed(job)
        if changed and len(old) == len(new):
            first, last = min(changed), max(changed)
            self.dataChanged.emit(
                self.index(first, 0, parent), self.index(last, len(COLUMNS) - 1, parent)
            )

    def _changed(self, job: JobRow) -> None:
        row = self._rows.index(job)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
