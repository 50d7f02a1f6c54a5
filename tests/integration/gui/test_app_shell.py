"""The app shell: the screenshot mode, remembered geometry and what happens on close."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from celery import Celery
from PIL import Image, ImageChops
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from celery_core.redis_server.embedded import running_server
from pixcrawler_gui.models.workers_model import STATE_COLUMN
from pixcrawler_gui.services.events import WorkerState
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.views.close_dialog import CloseDialog
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.conftest import REPO, SCREENSHOTS, run, screenshot, wait_for
from tests.integration.gui.fakes import FakeBackend
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.worker_proc import WorkerProcess


def test_screenshot_mode_starts_own_redis_saves_the_window_and_quits(
    isolated_dirs: Path,
) -> None:
    target = SCREENSHOTS / "00-main-window-cli.png"
    target.unlink(missing_ok=True)
    dead = free_port()
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PIXCRAWLER_CELERY_BROKER_URL": f"redis://127.0.0.1:{dead}/0",
        "PIXCRAWLER_CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{dead}/1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", "gui", "--screenshot", str(target)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    image = QImage(str(target))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500
    assert "started its own server" in done.stderr  # nothing answered at the dead port
    assert running_server(isolated_dirs / "data" / "redis") is None  # and it stopped on exit
    drawn = re.search(r"first drawn ([0-9.]+) s after the program started", done.stdout)
    assert drawn is not None and 0 < float(drawn.group(1)) < 90, done.stdout


@pytest.fixture
def fake_window(
    loop: qasync.QEventLoop, qtbot: Any, ui_state: QSettings
) -> Iterator[tuple[MainWindow, FakeBackend]]:
    backend = FakeBackend()
    window = MainWindow(backend, ui_state)
    window.show()
    qtbot.waitExposed(window)
    yield window, backend
    window.finish_close()
    window.deleteLater()


def test_window_remembers_its_size_and_position(
    loop: qasync.QEventLoop, qtbot: Any, ui_state: QSettings
) -> None:
    first = MainWindow(FakeBackend(), ui_state)
    first.show()
    qtbot.waitExposed(first)
    first.resize(760, 540)  # within the offscreen screen (800 x 800): restoring keeps it there
    first.move(20, 30)
    QApplication.processEvents()
    geometry = first.geometry()
    first.finish_close()
    first.deleteLater()
    assert ui_state.value("main_window/geometry") is not None

    second = MainWindow(FakeBackend(), ui_state)
    second.show()
    qtbot.waitExposed(second)
    assert second.size() == geometry.size()
    assert second.pos() == first.pos()
    second.finish_close()
    second.deleteLater()


def _closing_choice(window: MainWindow, qtbot: Any, click: str) -> list[bool]:
    requested: list[bool] = []
    window.close_requested.connect(requested.append)
    window.close()
    dialog = wait_for(qtbot, lambda: window.findChild(CloseDialog), timeout=10)
    assert dialog is not None
    wait_for(qtbot, dialog.isVisible, timeout=10)
    if click == "keep":
        screenshot(dialog, "11-close-while-busy")
    button = {"keep": dialog.keep_button, "stop": dialog.stop_button}.get(
        click, dialog.cancel_button
    )
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return requested


def test_close_asks_only_when_jobs_run(
    fake_window: tuple[MainWindow, FakeBackend], qtbot: Any
) -> None:
    window, backend = fake_window
    backend.supervisor.busy = True
    requested = _closing_choice(window, qtbot, "cancel")
    wait_for(qtbot, lambda: window._close_task is not None and window._close_task.done(), 10)
    assert requested == [] and window.isVisible() and window.isEnabled()

    with qtbot.waitSignal(window.close_requested, timeout=10_000) as keep:
        _closing_choice(window, qtbot, "keep")
    assert keep.args == [True]

    backend.supervisor.busy = False
    window.setEnabled(True)
    with qtbot.waitSignal(window.close_requested, timeout=10_000) as idle:
        window.request_close()
    assert idle.args == [False]  # nothing runs: no question asked
    dialogs = [d for d in window.findChildren(CloseDialog) if d.isVisible()]
    assert dialogs == []


def _state(window: MainWindow, row: int = 0) -> str:
    model = window.workers_panel.model
    return str(model.data(model.index(row, STATE_COLUMN)))


def _start_busy_worker(
    loop: qasync.QEventLoop, qtbot: Any, services: AppServices, window: MainWindow, app: Celery
) -> tuple[int, str]:
    run(loop, qtbot, services.start())
    worker_id = services.supervisor.add_worker(services.supervisor.suggest_spec("prefork", 1))
    wait_for(qtbot, lambda: _state(window) == "Ready", timeout=60)
    key = f"busy-{uuid.uuid4().hex}"
    app.send_task("tests.slow", args=[key, 4.0])
    wait_for(qtbot, lambda: _state(window).startswith("Busy"), timeout=30)
    pid = window.workers_panel.model.snapshot(0).pid  # type: ignore[union-attr]
    assert pid is not None and worker_id
    return pid, key


def test_keep_running_leaves_a_busy_worker_working_after_the_app_closes(
    loop: qasync.QEventLoop,
    qtbot: Any,
    services: AppServices,
    window: MainWindow,
    test_app: Celery,
    redis_proc: RedisProcess,
) -> None:
    pid, key = _start_busy_worker(loop, qtbot, services, window, test_app)
    requested = _closing_choice(window, qtbot, "keep")
    wait_for(qtbot, lambda: requested == [True], timeout=20)
    run(loop, qtbot, services.shutdown(keep_workers=True), timeout=60)
    try:
        os.kill(pid, 0)  # still running, on its own
        store = redis_proc.client(1)
        wait_for(qtbot, lambda: store.llen(f"{key}:finished") == 1, timeout=30)
    finally:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_stop_workers_on_close_lets_the_running_task_finish(
    loop: qasync.QEventLoop,
    qtbot: Any,
    services: AppServices,
    window: MainWindow,
    test_app: Celery,
    redis_proc: RedisProcess,
) -> None:
    pid, key = _start_busy_worker(loop, qtbot, services, window, test_app)
    requested = _closing_choice(window, qtbot, "stop")
    wait_for(qtbot, lambda: requested == [False], timeout=20)
    run(loop, qtbot, services.shutdown(keep_workers=False), timeout=60)
    assert redis_proc.client(1).llen(f"{key}:finished") == 1  # warm shutdown
    snapshot = services.supervisor.workers()[0]
    assert snapshot.state == WorkerState.STOPPED and snapshot.exit_code == 0
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_workers_started_elsewhere_appear_as_remote(
    loop: qasync.QEventLoop,
    qtbot: Any,
    services: AppServices,
    window: MainWindow,
    celery_env: dict[str, str],
) -> None:
    run(loop, qtbot, services.start())
    services.supervisor.add_worker(services.supervisor.suggest_spec("solo", 1))
    other = WorkerProcess(
        celery_env,
        pool="threads",
        concurrency=3,
        queues="crawl",
        name=f"laptop-{uuid.uuid4().hex[:4]}@elsewhere",
    ).start()
    try:
        model = window.workers_panel.model
        wait_for(qtbot, lambda: model.rowCount() == 2 and _state(window, 0) == "Ready", 60)
        wait_for(qtbot, lambda: model.data(model.index(1, 3)) == "threads", timeout=30)
        assert model.data(model.index(1, 0)) == other.name
        assert model.data(model.index(1, 1)) == "Remote (watched)"
        assert model.data(model.index(1, 4)) == "3"
        assert model.data(model.index(1, 5)) == "crawl"
        panel = window.workers_panel
        panel.table.selectRow(1)
        assert not panel.stop_button.isEnabled() and not panel.restart_button.isEnabled()
        assert "remote worker" in panel.log_title.text()
        screenshot(window, "12-workers-local-and-remote")
        other.stop()
        wait_for(qtbot, lambda: _state(window, 1) == "Offline", timeout=30)
    finally:
        other.stop()


def test_icon_and_desktop_entry_ship_in_resources(tmp_path: Path, qapp: QApplication) -> None:
    from pixcrawler_gui.desktop.icon import app_icon, render_png

    resources = REPO / "resources"
    rendered = tmp_path / "icon.png"
    render_png(resources / "pixcrawler.svg", rendered)
    shipped = Image.open(resources / "pixcrawler.png").convert("RGBA")
    fresh = Image.open(rendered).convert("RGBA")
    # PNG up to date: the same picture. Rasterisers round edges by a level here and there
    # depending on the CPU's vector unit, so compare channel by channel with a small margin.
    assert shipped.size == (256, 256) == fresh.size
    assert max(high for _, high in ImageChops.difference(shipped, fresh).getextrema()) <= 2
    assert not app_icon().isNull()
    entry = (resources / "pixcrawler.desktop").read_text()
    lines = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert entry.startswith("[Desktop Entry]")
    assert lines["Type"] == "Application" and lines["Exec"] == "pixcrawler-gui"
    assert lines["Icon"] == "pixcrawler" and lines["Terminal"] == "false"
