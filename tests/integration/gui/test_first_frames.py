"""The first frame while the app's worker starts, settings amounts in words, the
worker log wrapped with tracebacks folded, and paths shown where nothing opens them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QPlainTextEdit, QScrollArea

from pixcrawler_gui.desktop import open_path as open_path_module
from pixcrawler_gui.desktop.open_path import PathDialog, open_path
from pixcrawler_gui.services.events import WorkerLog, WorkersOnline
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.conftest import screenshot, wait_for
from tests.integration.gui.fakes import FakeBackend
from tests.integration.gui.jobs_fixtures import JobsSession

TRACEBACK = [
    "[2025-01-01 12:00:00,000: INFO/MainProcess] celery@pix-1 ready. " + "=" * 160,
    "[2025-01-01 12:00:05,000: ERROR/ForkPoolWorker-1] Task crawl_keyword[abc] raised:",
    "Traceback (most recent call last):",
    '  File "/usr/lib/python3/site-packages/celery/app/trace.py", line 453, in trace_task',
    "    R = retval = fun(*args, **kwargs)",
    '  File "/work/celery_core/worker/crawl_task.py", line 88, in run',
    "    raise OSError(28, 'No space left on device')",
    "OSError: [Errno 28] No space left on device",
    "[2025-01-01 12:00:06,000: INFO/MainProcess] Task crawl_keyword[def] received",
]


def _window(backend: FakeBackend, ui_state: QSettings, qtbot: Any) -> MainWindow:
    window = MainWindow(backend, ui_state)
    window.resize(1100, 720)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def starting(ui_state: QSettings, qtbot: Any) -> Iterator[tuple[MainWindow, FakeBackend]]:
    backend = FakeBackend()
    backend.starting_worker = True
    window = _window(backend, ui_state, qtbot)
    yield window, backend
    window.finish_close()
    window.deleteLater()


def test_first_frame_says_a_worker_is_starting(
    starting: tuple[MainWindow, FakeBackend], qtbot: Any
) -> None:
    window, backend = starting
    panel = window.workers_panel
    assert panel.empty_title.text() == "Starting a worker on this computer…"
    assert not panel.empty_button.isVisible()
    screenshot(window, "60-first-frame-starting")
    # The worker shows up: its row, not the empty page.
    worker_id = backend.supervisor.add_worker(backend.supervisor.suggest_spec("prefork", 2))
    assert panel.stack.currentIndex() == 1 and panel.selected() is not None
    backend.supervisor.remove_worker(worker_id)
    assert panel.empty_title.text() == "No workers yet" and panel.empty_button.isVisible()


def test_no_worker_coming_turns_into_no_workers_yet(
    starting: tuple[MainWindow, FakeBackend], qtbot: Any
) -> None:
    window, backend = starting
    backend.hub.publish(WorkersOnline(0))  # start-up ended without a local worker
    panel = window.workers_panel
    assert panel.empty_title.text() == "No workers yet" and panel.empty_button.isVisible()


def test_worker_log_wraps_and_folds_tracebacks(
    starting: tuple[MainWindow, FakeBackend], qtbot: Any
) -> None:
    window, backend = starting
    panel = window.workers_panel
    worker_id = backend.supervisor.add_worker(backend.supervisor.suggest_spec("prefork", 2))
    assert panel.log_view.lineWrapMode() == QPlainTextEdit.LineWrapMode.WidgetWidth
    # The traceback arrives in two parts: it folds once its last line is in.
    backend.hub.publish(WorkerLog(worker_id, tuple(TRACEBACK[:4])))
    backend.hub.publish(WorkerLog(worker_id, tuple(TRACEBACK[4:])))
    text = panel.log_view.toPlainText().splitlines()
    assert text[0] == f"log of {worker_id}"
    assert text[3].startswith("▸ OSError: [Errno 28] No space left on device")
    assert "5 lines folded" in text[3]
    assert text[4].endswith("received") and len(text) == 5
    assert panel.log_view.horizontalScrollBar().maximum() == 0  # nothing off to the side
    screenshot(window, "61-worker-log-traceback")
    panel.full_tracebacks.setChecked(True)  # from the supervisor's lines: the fake has one
    assert panel.log_view.toPlainText() == f"log of {worker_id}"


def test_settings_show_seconds_and_bytes_in_words(ui_state: QSettings, qtbot: Any) -> None:
    window = _window(FakeBackend(), ui_state, qtbot)
    try:
        dialog = window.open_settings()
        dialog.resize(1000, 680)
        rows = dialog.form.rows
        expires = rows["CelerySettings.result_expires"].binding
        assert expires.unit_hint is not None and expires.unit_hint.text() == "= 7 days"
        image = rows["CrawlerSettings.max_image_bytes"].binding
        assert image.unit_hint is not None and image.unit_hint.text() == "= 20 MB"
        # Typing a number updates the words; the number saved is the one typed.
        spin = expires.spin  # type: ignore[attr-defined]
        spin.lineEdit().setText("5400")
        assert expires.unit_hint.text() == "= 1 hour 30 min"
        assert dialog.editor.value("CelerySettings.result_expires") == 5400
        dialog.form.show_page_of("CelerySettings.result_expires")
        screenshot(dialog, "62-settings-units")
        dialog.form.show_page_of("CrawlerSettings.max_image_bytes")
        screenshot(dialog, "62b-settings-bytes")
        dialog.reject()
    finally:
        window.finish_close()
        window.deleteLater()


def test_a_path_nothing_opens_is_shown_with_copy(
    ui_state: QSettings, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(open_path_module.QDesktopServices, "openUrl", lambda url: False)
    window = _window(FakeBackend(), ui_state, qtbot)
    try:
        assert open_path(tmp_path, "dataset folder", window) is False
        dialog = wait_for(qtbot, lambda: window.findChild(PathDialog))
        assert dialog.isVisible() and dialog.path_edit.text() == str(tmp_path)
        screenshot(window, "63-open-folder-fallback-window")
        screenshot(dialog, "63-open-folder-fallback")
        qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
        assert QApplication.clipboard().text() == str(tmp_path)
        dialog.accept()
    finally:
        window.finish_close()
        window.deleteLater()


def test_first_run_opens_on_new_crawl_with_the_form_in_reach(
    jobs_session: JobsSession, qtbot: Any
) -> None:
    window = jobs_session.app.window
    form = jobs_session.app.pages.form
    assert window.pages.currentWidget() is form
    scroll = form.findChild(QScrollArea)
    assert scroll is not None
    body = scroll.widget()
    # Nothing cut off at the side: the form is no wider than what shows of it.
    assert body.minimumSizeHint().width() <= scroll.viewport().width()
    screenshot(window, "64-crawl-form")
