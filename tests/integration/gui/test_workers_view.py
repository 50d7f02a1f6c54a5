"""The Workers page with a stand-in supervisor: wording of states and which buttons apply."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt

from pixcrawler_gui.models.workers_model import STATE_COLUMN
from pixcrawler_gui.services.events import Location, NodeEvent, WorkerCrashed, WorkerState
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.fakes import FakeBackend


@pytest.fixture
def shown(
    loop: qasync.QEventLoop, qtbot: Any, ui_state: QSettings
) -> Iterator[tuple[MainWindow, FakeBackend]]:
    backend = FakeBackend()
    window = MainWindow(backend, ui_state)
    window.show()
    qtbot.waitExposed(window)
    yield window, backend
    window.finish_close()
    window.deleteLater()


def _state(window: MainWindow, row: int = 0) -> str:
    model = window.workers_panel.model
    return str(model.data(model.index(row, STATE_COLUMN)))


@pytest.mark.parametrize(
    ("state", "changes", "text"),
    [
        (WorkerState.STARTING, {}, "Starting…"),
        (WorkerState.READY, {}, "Ready"),
        (WorkerState.BUSY, {"active_tasks": 2}, "Busy (2 tasks)"),
        (WorkerState.CRASHED, {"error": "killed by signal 9"}, "Crashed (killed by signal 9)"),
        (WorkerState.RESTARTING, {"restart_in": 2.3}, "Restarting in 3 s"),
        (WorkerState.STOPPING, {}, "Stopping…"),
        (WorkerState.STOPPED, {}, "Stopped"),
        (WorkerState.FAILED, {"error": "bad"}, "Failed: bad"),
        (WorkerState.READY, {"heartbeat_age": 12}, "Ready · no heartbeat for 12 s"),
    ],
)
def test_state_wording(
    shown: tuple[MainWindow, FakeBackend], state: WorkerState, changes: dict[str, Any], text: str
) -> None:
    window, backend = shown
    worker = backend.supervisor.add_worker(backend.supervisor.suggest_spec("solo", 1))
    backend.supervisor.set_state(worker, state, **changes)
    assert _state(window) == text


def test_buttons_follow_the_selected_worker(
    shown: tuple[MainWindow, FakeBackend], qtbot: Any
) -> None:
    window, backend = shown
    panel = window.workers_panel
    assert not panel.toolbar.isVisibleTo(window)  # the empty state has its own button
    worker = backend.supervisor.add_worker(backend.supervisor.suggest_spec("solo", 1))
    assert panel.toolbar.isVisibleTo(window) and panel.stack.currentIndex() == 1
    backend.supervisor.set_state(worker, WorkerState.READY)
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    assert not panel.remove_button.isEnabled()
    qtbot.mouseClick(panel.restart_button, Qt.MouseButton.LeftButton)
    backend.supervisor.set_state(worker, WorkerState.STOPPED)
    assert panel.start_button.isEnabled() and panel.remove_button.isEnabled()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert backend.supervisor.calls == [("restart", worker), ("start", worker)]


def test_remote_workers_come_from_node_events(shown: tuple[MainWindow, FakeBackend]) -> None:
    window, backend = shown
    from pixcrawler_gui.services.cluster.remote_workers import RemoteWorkers

    RemoteWorkers(backend.hub, backend.supervisor.is_local)
    backend.hub.publish(NodeEvent("gpu-box@lab", "heartbeat", active=1, processed=5))
    model = window.workers_panel.model
    snapshot = model.snapshot(0)
    assert snapshot is not None and snapshot.location == Location.REMOTE
    assert _state(window) == "Busy (1 task)"
    backend.hub.publish(NodeEvent("gpu-box@lab", "offline"))
    assert _state(window) == "Offline"


def test_crashes_are_told_next_to_the_log_and_a_repeated_one_pops_up(
    shown: tuple[MainWindow, FakeBackend], qtbot: Any
) -> None:
    window, backend = shown
    worker = backend.supervisor.add_worker(backend.supervisor.suggest_spec("solo", 1))
    backend.supervisor.set_state(worker, WorkerState.READY)
    node = backend.supervisor.workers()[0].node
    first = WorkerCrashed(
        worker_id=worker,
        node=node,
        at=time.time() - 60,
        exit_code=None,
        signal=9,
        restarted=True,
        restart_in=1.0,
        crashes_in_a_row=1,
        previous_crash_at=None,
        tasks_handed_back=1,
        task_ids=("t1",),
    )
    backend.hub.publish(first)
    panel = window.workers_panel
    assert panel.crash_box.isVisibleTo(window)
    assert "1 task it had taken was handed back to the queue" in panel.crash_text.text()
    assert _state(window).startswith("Ready · last crash at ")
    notifier: Any = window.notifier
    assert notifier.sent == []  # one crash: the page says it, the desktop stays quiet

    second = replace(first, at=time.time(), previous_crash_at=first.at, crashes_in_a_row=2,
                     tasks_handed_back=0, task_ids=())  # fmt: skip
    backend.hub.publish(second)
    assert panel.crash_text.text().startswith("<b>Latest 2 crashes</b>")
    assert [sent[0] for sent in notifier.sent] == [f"Worker keeps crashing: {node}"]

    qtbot.mouseClick(panel.crash_dismiss, Qt.MouseButton.LeftButton)
    assert not panel.crash_box.isVisibleTo(window) and _state(window) == "Ready"
