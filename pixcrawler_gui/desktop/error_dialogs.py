"""Unexpected errors as dialogs a person can act on, with the details in a log file.

`install(log_path)` sends the app's log to `log_path` and replaces `sys.excepthook` (and the
hook for exceptions in threads): the traceback goes to the log, and the person sees a short
message, where the log is, and a button that opens its folder. Never a traceback on screen.

Call it right after the QApplication is created (see `pixcrawler_gui.app.run_gui`). Dialogs
are shown by default only in the packaged app; from source the hook logs and lets the
previous hook print the traceback, as developers expect.

This module imports Qt only when a dialog is shown, so `log_dir()` and `log_file()` are cheap
for the command-line roles.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "APP_NAME",
    "LOG_NAME",
    "ErrorReporter",
    "asyncio_exception_handler",
    "configure_file_logging",
    "has_display",
    "install",
    "log_dir",
    "log_file",
    "show_error",
    "user_message",
]

APP_NAME = "PixCrawler"
LOG_NAME = "pixcrawler.log"
LOG_DIR_ENV = "PIXCRAWLER_LOG_DIR"
_MAX_LOG_BYTES = 2 * 1024 * 1024
_REPEAT_QUIET_S = 60.0  # the same error again within this time is logged, not shown again

log = logging.getLogger("pixcrawler")


def log_dir() -> Path:
    """The folder for log files: `PIXCRAWLER_LOG_DIR`, else the platform's user log folder."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_NAME, appauthor=False)).resolve()


def log_file() -> Path:
    """The desktop app's log file (its path is shown in the About dialog and error dialogs)."""
    return log_dir() / LOG_NAME


class _MaskingFormatter(logging.Formatter):
    """Log lines, tracebacks included, with the passwords in URLs masked."""

    def format(self, record: logging.LogRecord) -> str:
        from celery_core.settings.redis_urls import mask_secrets

        return mask_secrets(super().format(record))


def configure_file_logging(path: Path, level: int = logging.INFO) -> logging.Handler:
    """Add a rotating file handler for `path` to the root logger (once per path)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "baseFilename", None) == str(path):
            return handler
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=_MAX_LOG_BYTES, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(
        _MaskingFormatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    )
    handler.setLevel(level)
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return handler


def user_message(exc: BaseException) -> str:
    """What went wrong, in words a person can act on (no traceback, passwords masked)."""
    from celery_core.settings.redis_urls import mask_secrets

    text = mask_secrets(" ".join(str(exc).split()))
    if isinstance(exc, PermissionError):
        where = f" ({exc.filename})" if exc.filename else ""
        return (
            f"PixCrawler is not allowed to read or write a file or folder{where}. Choose "
            "another folder, or check its permissions."
        )
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC on every platform Python runs on
        return "The disk is full. Free some space, or choose a folder on another disk."
    if isinstance(exc, MemoryError):
        return (
            "The computer ran out of memory. Close other programs, or crawl fewer images at once."
        )
    name = type(exc).__name__
    return f"Something unexpected went wrong ({name}: {text})." if text else f"{name}."


def show_error(title: str, message: str, log_path: Path | None, parent: Any = None) -> None:
    """A modal dialog with `message`, where the log is and a button to open its folder."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    open_button = None
    if log_path is not None:
        box.setInformativeText(
            f"The details are in the log file:\n{log_path}\n\nIf the problem persists, "
            "send this file along with your report."
        )
        open_button = box.addButton("Open Log Folder", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    box.setObjectName("pixcrawler-error-dialog")
    box.exec()
    if open_button is not None and box.clickedButton() is open_button and log_path is not None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_path.parent)))


class ErrorReporter:
    """Logs every uncaught exception; shows a dialog for it when `dialogs` is on."""

    def __init__(self, log_path: Path, dialogs: bool) -> None:
        self.log_path = log_path
        self.dialogs = dialogs
        self.previous_hook = sys.excepthook
        self._showing = False
        self._last_shown: dict[str, float] = {}
        self._lock = threading.Lock()

    def excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self.previous_hook(exc_type, exc, tb)
            return
        log.error("Uncaught exception", exc_info=(exc_type, exc, tb))
        if not self.dialogs:
            self.previous_hook(exc_type, exc, tb)
            return
        self.report(exc)

    def thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "?"
        log.error("Uncaught exception in thread %s", name, exc_info=_exc_info(args))
        if self.dialogs:
            self.report(args.exc_value)

    def report(self, exc: BaseException) -> None:
        """Show `exc` to the person (once at a time, not again and again), from any thread."""
        message = user_message(exc)
        with self._lock:
            now = time.monotonic()
            if self._showing or now - self._last_shown.get(message, -1e9) < _REPEAT_QUIET_S:
                return
            self._last_shown[message] = now
        if threading.current_thread() is threading.main_thread():
            self._show(message)
            return
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            # A widget must be made on the GUI thread: hand the dialog over to it.
            QTimer.singleShot(0, app, lambda: self._show(message))

    def _show(self, message: str) -> None:
        from PySide6.QtWidgets import QApplication

        if QApplication.instance() is None:
            return
        self._showing = True
        try:
            show_error(f"{APP_NAME}: something went wrong", message, self.log_path)
        finally:
            self._showing = False


def _exc_info(
    args: threading.ExceptHookArgs,
) -> tuple[type[BaseException], BaseException, TracebackType | None]:
    assert args.exc_value is not None
    return (args.exc_type, args.exc_value, args.exc_traceback)


_reporter: ErrorReporter | None = None
_HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal"})


def has_display() -> bool:
    """Whether a dialog can be seen: not on Qt's offscreen or minimal platform.

    A modal dialog nobody can see would block a scripted run (e.g. `gui --screenshot`)
    forever; there the error goes to the log and the terminal instead.
    """
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is not None:
        name = QGuiApplication.platformName()
    else:
        name = os.environ.get("QT_QPA_PLATFORM", "").split(":", 1)[0]
    return name not in _HEADLESS_PLATFORMS


def install(log_path: Path | None = None, dialogs: bool | None = None) -> ErrorReporter:
    """Log to `log_path` (default `log_file()`) and report uncaught exceptions.

    `dialogs` defaults to True in the packaged app on a real display. Returns the reporter, whose
    `excepthook` is now `sys.excepthook`.
    """
    global _reporter
    path = log_path or log_file()
    configure_file_logging(path)
    show = (bool(getattr(sys, "frozen", False)) and has_display()) if dialogs is None else dialogs
    reporter = ErrorReporter(path, show)
    if _reporter is not None:
        reporter.previous_hook = _reporter.previous_hook
    sys.excepthook = reporter.excepthook
    threading.excepthook = reporter.thread_hook
    _reporter = reporter
    log.info("PixCrawler started (pid %d); log file %s", os.getpid(), path)
    return reporter


def asyncio_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """For `loop.set_exception_handler`: errors of background tasks, reported like the rest."""
    exc = context.get("exception")
    if _reporter is None or not _reporter.dialogs or not isinstance(exc, Exception):
        loop.default_exception_handler(context)  # logs it, with the traceback
        return
    log.error(
        "Error in the event loop: %s",
        context.get("message", ""),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    _reporter.report(exc)
