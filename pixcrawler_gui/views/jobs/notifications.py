"""Desktop notifications when a job ends (finished, failed or cancelled), with its counts, and
when a local worker keeps crashing or the supervisor gives up on it.

`JobNotifications` words the message; a `Notifier` shows it. `TrayNotifier` uses the system
tray (QSystemTrayIcon.showMessage) where there is one and keeps what it showed, so a test or
a screen without a tray can still see what would have popped up.
"""

from __future__ import annotations

from typing import Literal, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.presentation import job_text as words
from pixcrawler_gui.presentation.worker_text import crash_alert
from pixcrawler_gui.services.events import EventHub, WorkerCrashed
from pixcrawler_gui.services.jobs.job_events import JobEnded

Level = Literal["info", "warning", "error"]
_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "error": QSystemTrayIcon.MessageIcon.Critical,
}
SHOW_MS = 8000


class Notifier(Protocol):
    def notify(self, title: str, message: str, level: Level) -> None: ...


class TrayNotifier(QObject):
    shown = Signal(str, str, str)  # title, message, level

    def __init__(self, icon: QIcon, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sent: list[tuple[str, str, Level]] = []
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("PixCrawler")
            self.tray.show()

    def notify(self, title: str, message: str, level: Level) -> None:
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(title, message, _ICONS[level], SHOW_MS)
        self.sent.append((title, message, level))
        self.shown.emit(title, message, level)


def job_message(event: JobEnded) -> tuple[str, str, Level]:
    p = event.progress
    counts = words.counts_text(p)
    if p.state == "finished":
        return f"Crawl finished: {p.name}", f"{counts}.", "info"
    if p.state == "partial":
        short = sum(1 for k in p.keywords if k.partial)
        few = f"{short} keyword{'s' * (short != 1)} found fewer images than asked"
        return f"Crawl finished: {p.name}", f"{counts}. {few}.", "warning"
    if p.state == "cancelled":
        return f"Crawl cancelled: {p.name}", f"What it saved stays: {counts}.", "warning"
    if p.state == "finished_with_problems":
        problem = words.problem_text(p) or "some keywords got no images"
        return f"Crawl finished with problems: {p.name}", f"{problem} ({counts}).", "warning"
    fault = words.fault_text(p.fault) if p.fault is not None else None
    reason = fault or event.reason or p.error or "unknown error"
    return f"Crawl failed: {p.name}", f"{reason}. Saved before it stopped: {counts}.", "error"


class JobNotifications(QObject):
    def __init__(self, hub: EventHub, notifier: Notifier, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.notifier = notifier
        subscribe_for(self, hub, JobEnded, self._on_ended)

    def _on_ended(self, event: JobEnded) -> None:
        self.notifier.notify(*job_message(event))


class WorkerCrashNotifications(QObject):
    """A repeated crash of one worker, or the supervisor giving up on it, pops up; a single
    crash is told on the Workers page only (the worker is back within seconds)."""

    def __init__(self, hub: EventHub, notifier: Notifier, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.notifier = notifier
        self._alerted: dict[str, float] = {}  # worker id -> when it last raised one
        subscribe_for(self, hub, WorkerCrashed, self._on_crashed)

    def _on_crashed(self, event: WorkerCrashed) -> None:
        alert = crash_alert(event, self._alerted.get(event.worker_id))
        if alert is not None:
            self._alerted[event.worker_id] = event.at
            self.notifier.notify(*alert)
