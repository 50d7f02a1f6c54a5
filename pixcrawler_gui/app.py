"""The desktop app's entry point: QApplication, the qasync event loop and an orderly exit.

This is the one place that creates the application and the loop. Everything else runs on
that loop: Redis through redis.asyncio, blocking calls in the services' thread pool, worker
processes through QProcess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from celery_core.settings.celery_settings import CelerySettings, config_dir
from pixcrawler_gui.services.events import EndpointState, EndpointStatus
from pixcrawler_gui.services.jobs.jobs_runtime import JobsRuntime
from pixcrawler_gui.services.runtime import AppServices, RuntimeOptions
from pixcrawler_gui.views.main_window import MainWindow

log = logging.getLogger(__name__)

APP_NAME = "PixCrawler"
DESKTOP_FILE = "pixcrawler"
SCREENSHOT_SETTLE_TIMEOUT = 15.0
SCREENSHOT_SIZE = (1100, 720)  # the same picture whatever the screen, for docs and reviews


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the rest for Qt (e.g. -platform offscreen)."""
    parser = argparse.ArgumentParser(prog="pixcrawler gui")
    parser.add_argument("--screenshot", metavar="FILE.png", type=Path)
    return parser.parse_known_args(argv)


def ui_state() -> QSettings:
    """Window size and position, next to the settings files."""
    return QSettings(str(config_dir() / "ui-state.ini"), QSettings.Format.IniFormat)


def create_application(argv: list[str]) -> QApplication:
    from pixcrawler_gui.desktop.qt_compat import guard_singleton_refcounts

    if guard_singleton_refcounts():
        log.info("this PySide6 drops references to None, True or False: guarded (see qt_compat.py)")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([APP_NAME, *argv])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(DESKTOP_FILE)
    from pixcrawler_gui.desktop.icon import app_icon

    app.setWindowIcon(app_icon())
    # The window closes only after the services shut down (see `_main`).
    app.setQuitOnLastWindowClosed(False)
    return app


def run_gui(argv: list[str]) -> int:
    """`pixcrawler gui [--screenshot FILE.png]`; returns the exit code."""
    args, qt_args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_application(qt_args)
    from pixcrawler_gui.desktop import error_dialogs

    error_dialogs.install(error_dialogs.log_file())
    # A value that does not load never stops the app: it uses the default (or a lower file's
    # value), and the window's banner names the field and the file, with a way into Settings.
    loaded = CelerySettings.load_lenient()
    for problem in loaded.problems:
        log.warning("settings: %s", problem.log_line())
    settings = loaded.settings
    import qasync

    from pixcrawler_gui.desktop.main_thread_gc import MainThreadGC

    collector = MainThreadGC(parent=app)
    collector.start()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(error_dialogs.asyncio_exception_handler)
    # A screenshot shows the window as it opens; it starts no workers.
    services = AppServices(settings, RuntimeOptions(autostart_workers=args.screenshot is None))
    jobs = JobsRuntime(services)
    window = MainWindow(services, ui_state(), jobs)
    try:
        return int(loop.run_until_complete(_main(services, jobs, window, args.screenshot)))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        collector.stop()


async def _main(
    services: AppServices, jobs: JobsRuntime, window: MainWindow, screenshot: Path | None
) -> int:
    loop = asyncio.get_running_loop()
    closing: asyncio.Future[bool] = loop.create_future()

    def on_close(keep: bool) -> None:
        if not closing.done():
            closing.set_result(keep)

    window.close_requested.connect(on_close)
    if screenshot is not None:
        window.resize(*SCREENSHOT_SIZE)
    window.show()
    starting = loop.create_task(services.start(), name="start services")
    jobs_starting = loop.create_task(jobs.start(), name="start jobs")
    keep_workers = False
    code = 0
    try:
        with _quit_on_signals(lambda: window.request_close(ask=False)):
            if screenshot is not None:
                code = await _screenshot(services, window, starting, screenshot)
            else:
                keep_workers = await closing
    finally:
        # Background work first, then the services, then the window: nothing may outlive
        # the loop (a task would fail on a closed client, a thread on a deleted object).
        for task in (starting, jobs_starting):
            if not task.done():
                task.cancel()
        await asyncio.gather(starting, jobs_starting, return_exceptions=True)
        await window.stop_pages()
        await jobs.shutdown()
        await services.shutdown(keep_workers=keep_workers)
        window.finish_close(remember_geometry=screenshot is None)
    return code


async def _screenshot(
    services: AppServices, window: MainWindow, starting: asyncio.Task[None], path: Path
) -> int:
    await window.until_drawn()
    drawn_after = process_age_s()
    settled = asyncio.Event()

    def check(status: EndpointStatus) -> None:
        if status.state != EndpointState.CHECKING:
            settled.set()

    unsubscribe = services.hub.subscribe(EndpointStatus, check)
    try:
        async with asyncio.timeout(SCREENSHOT_SETTLE_TIMEOUT):
            await asyncio.shield(starting)
            await settled.wait()
    except TimeoutError:
        log.warning("the connection checks did not finish; saving the window as it is")
    finally:
        unsubscribe()
    await asyncio.sleep(0.2)  # let the status bar repaint after the last event
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        print(f"pixcrawler: could not save a screenshot to {path}", file=sys.stderr)
        return 1
    print(f"Saved a screenshot of the main window to {path}")
    if drawn_after is not None:
        print(f"The window was first drawn {drawn_after:.2f} s after the program started.")
    return 0


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: from /proc), or None where unknown."""
    try:
        with open("/proc/self/stat") as handle:
            started_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _quit_on_signals(handler: Callable[[], None]) -> Iterator[None]:
    """Ctrl+C or SIGTERM closes the app as the window's Quit does (workers stopped)."""
    loop = asyncio.get_running_loop()
    names = ["SIGINT", "SIGTERM"] if sys.platform != "win32" else ["SIGINT"]
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(handler)

    for name in names:
        number = getattr(signal, name)
        previous[number] = signal.signal(number, on_signal)
    # Python runs signal handlers only between bytecodes: wake it up now and then.
    timer = QTimer()
    timer.start(300)
    timer.timeout.connect(lambda: None)
    try:
        yield
    finally:
        timer.stop()
        for number, old in previous.items():
            signal.signal(number, old)
