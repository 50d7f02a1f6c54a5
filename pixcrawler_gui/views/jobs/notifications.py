"""Desktop notifications when a job ends (finished, failed or cancelled), with its counts.

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
from pixcrawler_gui.services.events import EventHub
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
    reason = event.reason or p.error or "unknown error"
    return f"Crawl failed: {p.name}", f"{reason}. Saved before it stopped: {counts}.", "error"


class JobNotifications(QObject):
    def __init__(self, hub: EventHub, notifier: Notifier, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.notifier = notifier
        subscribe_for(self, hub, JobEnded, self._on_ended)

    def _on_ended(self, event: JobEnded) -> None:
        self.notifier.notify(*job_message(event))
