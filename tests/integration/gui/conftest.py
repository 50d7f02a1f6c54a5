"""Fixtures for the desktop app's tests: an asyncio loop on Qt, leak checks, real services."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import asyncio
import contextlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from celery_core.settings.celery_settings import CelerySettings

# PySide6 6.12.0 on Python 3.11 drops references to None, True and False; see qt_compat.
from pixcrawler_gui.desktop.main_thread_gc import MainThreadGC
from pixcrawler_gui.desktop.qt_compat import guard_singleton_refcounts
from pixcrawler_gui.services.background import where
from pixcrawler_gui.services.runtime import AppServices, RuntimeOptions
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy
from tests.support.redis_proc import RedisProcess

guard_singleton_refcounts()

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
T = TypeVar("T")

if sys.platform == "linux":
    # Orphaned grandchildren (a killed worker's pool processes) are re-parented to this
    # process instead of init, so the leak check below sees them too.
    import ctypes

    _PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children() -> dict[int, tuple[str, str]]:
    """Direct children of this process: pid -> (state, command line)."""
    me = os.getpid()
    found: dict[int, tuple[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            found[int(entry.name)] = (fields[0], cmdline)
    return found


def _where(thread: threading.Thread) -> str:
    """Where a leaked thread is stuck: the innermost frames of its stack."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return ""
    stack = traceback.format_stack(frame)[-6:]
    return " at:\n" + "".join(stack)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads or child processes behind (and clean them up)."""
    threads_before = set(threading.enumerate())
    children_before = set(_children()) if sys.platform == "linux" else set()
    yield
    deadline = time.monotonic() + 15
    extra_threads: list[threading.Thread] = []
    extra_children: dict[int, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        extra_threads = [
            t for t in threading.enumerate() if t not in threads_before and t.is_alive()
        ]
        extra_children = {}
        if sys.platform == "linux":
            for pid, (state, cmd) in _children().items():
                if pid in children_before:
                    continue
                if state == "Z":
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                    continue
                extra_children[pid] = (state, cmd)
        if not extra_threads and not extra_children:
            return
        QApplication.processEvents()
        time.sleep(0.05)  # polling a condition with a deadline, not synchronising on time
    for pid in extra_children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    problems = [f"thread {t.name!r}{_where(t)}" for t in extra_threads]
    problems += [f"process {pid} ({cmd})" for pid, (_, cmd) in extra_children.items()]
    pytest.fail("leaked: " + "; ".join(problems))


_COLLECTOR: list[MainThreadGC] = []


@pytest.fixture(scope="session", autouse=True)
def main_thread_gc(qapp: QApplication) -> Iterator[MainThreadGC]:
    """As in the app, cyclic garbage is collected on the GUI thread only.

    One collector for the whole session: other folders (tests/integration/faults) use this
    fixture too, and a second collector would find the automatic one already off and never
    give it back."""
    owner = not _COLLECTOR
    if owner:
        _COLLECTOR.append(MainThreadGC(parent=qapp))
        _COLLECTOR[0].start()
    yield _COLLECTOR[0]
    if owner:
        _COLLECTOR.pop().stop()


_CLOSED_LOOPS: list[qasync.QEventLoop] = []


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """An asyncio loop on the running Qt event loop, so qtbot.waitUntil drives asyncio too."""
    event_loop = qasync.QEventLoop(qapp, already_running=True)
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-loop")
    event_loop.set_default_executor(executor)
    yield event_loop
    pending = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
    for task in pending:
        task.cancel()
    deadline = time.monotonic() + 5
    while any(not t.done() for t in pending) and time.monotonic() < deadline:
        QApplication.processEvents()
    qapp.aboutToQuit.disconnect(event_loop._after_run_forever)
    # With already_running=True the loop never ran run_forever(), so it cannot be stopped
    # through stop() (that would make QApplication quit every later event loop): mark it idle.
    event_loop._QEventLoop__is_running = False
    event_loop.close()
    executor.shutdown(wait=True)
    asyncio.events._set_running_loop(None)
    # The loop owns QObjects with live timers. Dropped here, Python's cyclic GC may destroy them
    # later from another thread (an executor or the Celery event receiver), where Qt cannot
    # unregister their timers, and the next timer tick touches freed memory. Keep them.
    _CLOSED_LOOPS.append(event_loop)


def run(loop: qasync.QEventLoop, qtbot: Any, coro: Any, timeout: float = 30.0) -> Any:
    """Run a coroutine to completion on `loop` while Qt keeps processing events."""
    task = loop.create_task(coro)
    try:
        qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
    except Exception:
        pytest.fail(f"{coro!r} did not finish in {timeout} s; pending tasks:\n{_tasks(loop)}")
    return task.result()


def _tasks(loop: qasync.QEventLoop) -> str:
    """Where each unfinished task on `loop` is waiting."""
    return "\n".join(
        f"- {t.get_name()}: {where(t)}" for t in asyncio.all_tasks(loop) if not t.done()
    )


@pytest.fixture
def ui_state(tmp_path: Path) -> QSettings:
    """Window geometry and other UI state, kept in tmp_path instead of the user's settings."""
    return QSettings(str(tmp_path / "ui-state.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def settings(redis_proc: RedisProcess) -> CelerySettings:
    return CelerySettings.load().updated(
        broker_url=redis_proc.url(0), result_backend=redis_proc.url(1)
    )


def test_options(tmp_path: Path, **changes: Any) -> RuntimeOptions:
    values: dict[str, Any] = {
        "allow_embedded": False,
        "embedded_dir": tmp_path / "embedded",
        "worker_cwd": str(REPO),
        "worker_include": ("tests.support.tasks",),
        "restart_policy": RestartPolicy(base_delay=1.0, max_delay=4.0, max_crashes=4),
        "grace_period": 15.0,
        "status_interval": 0.5,
        "status_max_backoff": 1.0,
        "autostart_workers": False,  # each test adds the workers it needs
        "roster_path": tmp_path / "workers.json",
        "availability_delay": 0.2,
    }
    values.update(changes)
    return RuntimeOptions(**values)


test_options.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def services(
    loop: qasync.QEventLoop, qtbot: Any, settings: CelerySettings, tmp_path: Path
) -> Iterator[AppServices]:
    """The app's real services against the test's Redis; shut down (workers stopped) after."""
    app_services = AppServices(settings, test_options(tmp_path))
    yield app_services
    run(loop, qtbot, app_services.shutdown(keep_workers=False), timeout=60)


def wait_for(qtbot: Any, condition: Callable[[], T], timeout: float = 30.0) -> T:
    """Wait (processing Qt and asyncio events) until `condition()` is truthy; return its value."""
    box: list[T] = []

    def check() -> bool:
        value = condition()
        if value:
            box.append(value)
            return True
        return False

    qtbot.waitUntil(check, timeout=int(timeout * 1000))
    return box[-1]


def screenshot(widget: QWidget, name: str) -> Path:
    """Save what `widget` shows to artifacts/screenshots/NAME.png (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    QApplication.processEvents()
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path


@pytest.fixture
def window(services: AppServices, ui_state: QSettings, qtbot: Any) -> Iterator[Any]:
    """The real main window on the real services."""
    from pixcrawler_gui.views.main_window import MainWindow

    main = MainWindow(services, ui_state)
    main.resize(1100, 720)  # screenshots at a desktop size, not the offscreen screen's 800 x 800
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.finish_close()
    main.deleteLater()


# The crawl form, jobs, gallery and history tests' fixtures.
from tests.integration.gui.jobs_fixtures import (  # noqa: E402
    crawl_worker,
    image_site,
    jobs_session,
    submitter,
)

__all__ = ["crawl_worker", "image_site", "jobs_session", "submitter"]
