"""The Workers page against real worker processes and a real Redis."""

from __future__ import annotations

import os
import signal
from typing import Any

import qasync
from PySide6.QtCore import Qt

from pixcrawler_gui.models.workers_model import STATE_COLUMN
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.conftest import run, screenshot, wait_for


def _state(window: MainWindow, row: int = 0) -> str:
    model = window.workers_panel.model
    return str(model.data(model.index(row, STATE_COLUMN)))


def test_worker_started_from_the_panel_comes_back_after_kill_9(
    loop: qasync.QEventLoop, qtbot: Any, services: AppServices, window: MainWindow
) -> None:
    run(loop, qtbot, services.start())
    bar = window.status
    wait_for(qtbot, lambda: bar.broker.text.text() == "Broker: connected", timeout=20)
    wait_for(qtbot, lambda: bar.backend.text.text() == "Results: connected", timeout=20)
    panel = window.workers_panel
    assert panel.stack.currentIndex() == 0  # the empty state tells what to do
    assert "Add worker" in panel.empty_text.text()
    screenshot(window, "01-workers-empty")

    qtbot.mouseClick(panel.empty_button, Qt.MouseButton.LeftButton)
    dialog = panel.add_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.concurrency.setValue(1)
    screenshot(dialog, "02-add-worker-dialog")
    with qtbot.waitSignal(panel.worker_added, timeout=5000) as added:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert added.args == ["w1"]

    wait_for(qtbot, lambda: _state(window) == "Ready", timeout=60)
    model = panel.model
    first = model.snapshot(0)
    assert first is not None and first.pid is not None
    assert model.data(model.index(0, 1)) == "This computer"
    # Ready may come first from the worker-online event, then from the worker's own line.
    wait_for(qtbot, lambda: f"{first.node} ready." in panel.log_view.toPlainText(), timeout=30)
    screenshot(window, "03-workers-ready")

    shown: list[str] = []
    model.dataChanged.connect(lambda *_: shown.append(_state(window)))
    os.kill(first.pid, signal.SIGKILL)
    wait_for(qtbot, lambda: any(s.startswith("Restarting in") for s in shown), timeout=30)
    screenshot(window, "04-workers-restarting")
    # Ready again, and the row still says there was a crash (the notice is under the table).
    wait_for(qtbot, lambda: _state(window).startswith("Ready · last crash at "), timeout=60)
    crashed = next(i for i, s in enumerate(shown) if s.startswith("Crashed"))
    restarting = next(i for i, s in enumerate(shown) if s.startswith("Restarting in"))
    assert crashed < restarting < len(shown) - 1, shown
    assert shown[crashed] == "Crashed (killed by signal 9)"
    assert "── worker killed by signal 9; restarting in" in panel.log_view.toPlainText()
    assert panel.crash_box.isVisible()
    assert "was killed by signal 9 (SIGKILL) at " in panel.crash_text.text()
    second = model.snapshot(0)
    assert second is not None and second.pid not in (None, first.pid)
    assert second.restarts == 1

    # Stop: warm shutdown, the process exits, the row says so and can be removed.
    panel.select(second.worker_id)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: _state(window).startswith("Stopped · last crash at "), timeout=60)
    assert not _alive(second.pid)
    assert panel.remove_button.isEnabled()
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert model.rowCount() == 0 and panel.stack.currentIndex() == 0


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
