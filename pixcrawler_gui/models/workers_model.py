"""The workers table: one row per local or remote worker, fed by `WorkerChanged` events, with
the latest crashes of each (`WorkerCrashed`) kept for the Workers page to tell."""

from __future__ import annotations

import math
import socket
from collections import deque
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from pixcrawler_gui.models.icons import dot_icon
from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.presentation.worker_text import clock_text
from pixcrawler_gui.services.events import (
    EventHub,
    Location,
    WorkerChanged,
    WorkerCrashed,
    WorkerRemoved,
    WorkerSnapshot,
    WorkerState,
)

COLUMNS = ("Worker", "Where", "State", "Pool", "Concurrency", "Queues")
STATE_COLUMN = COLUMNS.index("State")
SNAPSHOT_ROLE = Qt.ItemDataRole.UserRole + 1
CRASHES_KEPT = 5  # per worker, newest last
_CRASH_STATES = (WorkerState.CRASHED, WorkerState.RESTARTING, WorkerState.FAILED)

STATE_COLORS = {
    WorkerState.STARTING: "#8a8f98",
    WorkerState.READY: "#2e9d5b",
    WorkerState.BUSY: "#2f6fd6",
    WorkerState.STOPPING: "#8a8f98",
    WorkerState.CRASHED: "#d03b3b",
    WorkerState.RESTARTING: "#d08a12",
    WorkerState.STOPPED: "#8a8f98",
    WorkerState.FAILED: "#d03b3b",
    WorkerState.OFFLINE: "#8a8f98",
}
_Index = QModelIndex | QPersistentModelIndex


def state_text(snapshot: WorkerSnapshot) -> str:
    """How the State column words a worker's state."""
    state = snapshot.state
    if state == WorkerState.BUSY:
        tasks = snapshot.active_tasks
        text = f"Busy ({tasks} task{'s' if tasks != 1 else ''})"
    elif state == WorkerState.RESTARTING:
        # Whole seconds, rounded up, but 1.002 s still reads "1 s".
        seconds = max(1, math.ceil((snapshot.restart_in or 0) - 0.05))
        text = f"Restarting in {seconds} s"
    elif state == WorkerState.CRASHED:
        text = f"Crashed ({snapshot.error})" if snapshot.error else "Crashed"
    elif state == WorkerState.FAILED:
        text = f"Failed: {_clip(snapshot.error)}" if snapshot.error else "Failed"
    elif state in (WorkerState.STARTING, WorkerState.STOPPING):
        text = f"{state.value.capitalize()}…"
    else:
        text = state.value.capitalize()
    if snapshot.heartbeat_age is not None and state not in (WorkerState.OFFLINE,):
        text += f" · no heartbeat for {snapshot.heartbeat_age:.0f} s"
    return text


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class WorkersModel(QAbstractTableModel):
    def __init__(
        self, hub: EventHub, hostname: str | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._host = hostname or socket.gethostname()
        self._rows: list[WorkerSnapshot] = []
        self._crashes: dict[str, deque[WorkerCrashed]] = {}
        subscribe_for(self, hub, WorkerChanged, self.on_changed)
        subscribe_for(self, hub, WorkerRemoved, self.on_removed)
        subscribe_for(self, hub, WorkerCrashed, self.on_crashed)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        snapshot = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(snapshot, column)
        if role == SNAPSHOT_ROLE:
            return snapshot
        if role == Qt.ItemDataRole.DecorationRole and column == STATE_COLUMN:
            return dot_icon(STATE_COLORS[snapshot.state])
        if role == Qt.ItemDataRole.ForegroundRole and snapshot.location == Location.REMOTE:
            return QColor("#5f6670")
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(snapshot)
        return None

    def snapshot(self, row: int) -> WorkerSnapshot | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, worker_id: str) -> int:
        for row, snapshot in enumerate(self._rows):
            if snapshot.worker_id == worker_id:
                return row
        return -1

    def snapshots(self) -> list[WorkerSnapshot]:
        return list(self._rows)

    def on_changed(self, event: WorkerChanged) -> None:
        snapshot = event.snapshot
        row = self.row_of(snapshot.worker_id)
        if row < 0:
            # Local workers first, then remote ones, each in order of appearance.
            row = len(self._rows)
            if snapshot.location == Location.LOCAL:
                row = sum(1 for s in self._rows if s.location == Location.LOCAL)
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.insert(row, snapshot)
            self.endInsertRows()
            return
        self._rows[row] = snapshot
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def crashes(self, worker_id: str) -> list[WorkerCrashed]:
        """The worker's latest crashes not cleared yet, newest first."""
        return list(reversed(self._crashes.get(worker_id, ())))

    def on_crashed(self, event: WorkerCrashed) -> None:
        kept = self._crashes.setdefault(event.worker_id, deque(maxlen=CRASHES_KEPT))
        kept.append(event)
        self._row_changed(event.worker_id)

    def clear_crashes(self, worker_id: str) -> None:
        if self._crashes.pop(worker_id, None):
            self._row_changed(worker_id)

    def _row_changed(self, worker_id: str) -> None:
        row = self.row_of(worker_id)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def on_removed(self, event: WorkerRemoved) -> None:
        self._crashes.pop(event.worker_id, None)
        row = self.row_of(event.worker_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()

    def _display(self, snapshot: WorkerSnapshot, column: int) -> str:
        name = COLUMNS[column]
        if name == "Worker":
            return snapshot.node
        if name == "Where":
            if snapshot.location == Location.LOCAL:
                return "This computer"
            if snapshot.node.rpartition("@")[2] == self._host:
                return "This computer, in background (watched)"
            return "Remote (watched)"
        if name == "State":
            text = state_text(snapshot)
            crashes = self._crashes.get(snapshot.worker_id)
            if crashes and snapshot.state not in _CRASH_STATES:
                text += f" · last crash at {clock_text(crashes[-1].at)}"
            return text
        if name == "Pool":
            return snapshot.pool or "—"
        if name == "Concurrency":
            return str(snapshot.concurrency) if snapshot.concurrency else "—"
        return ", ".join(snapshot.queues) if snapshot.queues else "—"

    def _tooltip(self, snapshot: WorkerSnapshot) -> str:
        lines = [snapshot.node]
        if snapshot.location == Location.REMOTE:
            lines.append(
                "Started outside this window (another computer or an earlier session) and "
                "connected to the same Redis: watched here, not controlled."
            )
        if snapshot.pid:
            lines.append(f"Process id: {snapshot.pid}")
        if snapshot.processed is not None:
            lines.append(f"Tasks done: {snapshot.processed}")
        if snapshot.restarts:
            lines.append(f"Restarted {snapshot.restarts} time(s) after crashes")
        if snapshot.error:
            lines.append(f"Last problem: {snapshot.error}")
        crashes = self._crashes.get(snapshot.worker_id)
        if crashes:
            lines.append(f"Latest crash: {clock_text(crashes[-1].at)} (details below the table)")
        return "\n".join(lines)
