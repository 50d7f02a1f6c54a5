"""The Workers page: the table of workers, their controls, and for the selected one its latest
crashes (what stopped it, when, what became of its tasks) and its log."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pixcrawler_gui.desktop.icon import app_icon
from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.models.workers_model import WorkersModel
from pixcrawler_gui.presentation.readable_text import fold_tracebacks
from pixcrawler_gui.presentation.worker_text import crash_notice, signal_hint
from pixcrawler_gui.services.events import (
    EventHub,
    Location,
    WorkerChanged,
    WorkerLog,
    WorkerSnapshot,
    WorkersOnline,
    WorkerState,
)
from pixcrawler_gui.services.workers.supervisor import Supervisor
from pixcrawler_gui.views.row_selection import select_row, selected_row
from pixcrawler_gui.views.style import MUTED_TEXT, label
from pixcrawler_gui.views.workers.add_worker_dialog import AddWorkerDialog

LOG_BLOCKS = 2000
_CAN_START = {WorkerState.STOPPED, WorkerState.FAILED, WorkerState.CRASHED}
_CAN_STOP = {
    WorkerState.STARTING,
    WorkerState.READY,
    WorkerState.BUSY,
    WorkerState.RESTARTING,
    WorkerState.CRASHED,
}


class WorkersPanel(QWidget):
    worker_added = Signal(str)

    def __init__(
        self,
        supervisor: Supervisor,
        hub: EventHub,
        spec_defaults: Callable[[], tuple[str, int]],
        parent: QWidget | None = None,
        starting: bool = False,
    ) -> None:
        super().__init__(parent)
        self.supervisor = supervisor
        # The app starts a worker of this computer as it opens: until one shows up (or the
        # first count of workers says none will), say so rather than "No workers yet".
        self.starting = starting
        self._unfinished: list[str] = []  # a traceback still arriving in the log
        self._spec_defaults = spec_defaults
        self.model = WorkersModel(hub, parent=self)
        self.add_dialog: AddWorkerDialog | None = None

        title = label("Workers", "PageTitle", self, wrap=False)
        subtitle = label(
            "Workers run crawl jobs. Start them on this computer; workers on other computers "
            "that use the same Redis appear here by themselves.",
            "PageSubtitle",
            self,
        )
        self.add_button = QPushButton("Add worker…", self)
        self.add_button.setDefault(True)
        self.start_button = QPushButton("Start", self)
        self.stop_button = QPushButton("Stop", self)
        self.restart_button = QPushButton("Restart", self)
        self.remove_button = QPushButton("Remove", self)
        self.add_button.setToolTip("Start a new worker on this computer")
        self.stop_button.setToolTip("Let running tasks finish, then stop the worker")
        self.remove_button.setToolTip("Remove a stopped worker from the list")
        self.toolbar = QWidget(self)
        buttons = QHBoxLayout(self.toolbar)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addSpacing(12)
        for button in (self.start_button, self.stop_button, self.restart_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self._empty_state())
        self.stack.addWidget(self._content())

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 12)
        layout.addWidget(title)
        layout.addWidget(subtitle)
        layout.addSpacing(8)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.stack, 1)

        self.add_button.clicked.connect(self.open_add_dialog)
        self.start_button.clicked.connect(lambda: self._act(self.supervisor.start_worker))
        self.stop_button.clicked.connect(lambda: self._act(self.supervisor.stop_worker))
        self.restart_button.clicked.connect(lambda: self._act(self.supervisor.restart_worker))
        self.remove_button.clicked.connect(lambda: self._act(self.supervisor.remove_worker))
        self.model.rowsInserted.connect(self._rows_changed)
        self.model.rowsRemoved.connect(self._rows_changed)
        self.model.dataChanged.connect(self._refresh_selected)
        subscribe_for(self, hub, WorkerLog, self._on_log)
        subscribe_for(self, hub, WorkersOnline, self._on_online)
        for snapshot in supervisor.workers():
            self.model.on_changed(WorkerChanged(snapshot))
        self._rows_changed()

    # -- layout --------------------------------------------------------------------------------

    def _empty_state(self) -> QWidget:
        page = QWidget(self)
        page.setObjectName("EmptyState")
        self.empty_title = label("No workers yet", "EmptyTitle", page, wrap=False)
        self.empty_text = label(
            "Workers do the crawling. Click Add worker to start one on this computer. "
            "Workers started on other computers with the same Redis show up here too.",
            "EmptyText",
            page,
        )
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_text.setFixedWidth(440)
        # In a row of its own: an aligned item would get the label's unwrapped height.
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(self.empty_text)
        text_row.addStretch(1)
        self.empty_button = QPushButton("Add worker…", page)
        self.empty_button.setMinimumWidth(160)
        self.empty_button.clicked.connect(self.open_add_dialog)
        self.empty_picture = picture = QLabel(page)
        picture.setPixmap(app_icon().pixmap(96, 96))
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(picture, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addSpacing(8)
        layout.addWidget(self.empty_title, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addLayout(text_row)
        layout.addSpacing(8)
        layout.addWidget(self.empty_button, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(2)
        return page

    def _content(self) -> QWidget:
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        log_box = QWidget(self)
        self.log_title = label("Log", "SectionTitle", log_box, wrap=False)
        self.problem = QFrame(log_box)
        self.problem.setObjectName("ErrorBanner")
        self.problem_text = label("", "ProblemText", self.problem)
        self.problem_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        banner = QVBoxLayout(self.problem)
        banner.setContentsMargins(10, 6, 10, 6)
        banner.addWidget(self.problem_text)
        self.problem.hide()
        self.crash_box = self._crash_banner(log_box)
        self.log_view = QPlainTextEdit(log_box)
        self.log_view.setObjectName("LogView")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_BLOCKS)
        # Banners and long lines wrap: a log that opens scrolled sideways hides its start.
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.full_tracebacks = QCheckBox("Show full tracebacks", log_box)
        self.full_tracebacks.setToolTip(
            "A traceback shows as its last line (marked ▸) until you tick this"
        )
        self.full_tracebacks.toggled.connect(self._selection_changed)
        self.log_view.setPlaceholderText("Select a worker to see what it writes.")
        # Stay at the newest line (as the log grows or the pane shrinks) until the user
        # scrolls up to read something.
        self._follow_log = True
        bar = self.log_view.verticalScrollBar()
        bar.valueChanged.connect(self._log_scrolled)
        bar.rangeChanged.connect(self._scroll_log)
        column = QVBoxLayout(log_box)
        column.setContentsMargins(0, 6, 0, 0)
        title_row = QHBoxLayout()
        title_row.addWidget(self.log_title, 1)
        title_row.addWidget(self.full_tracebacks)
        column.addLayout(title_row)
        column.addWidget(self.problem)
        column.addWidget(self.crash_box)
        column.addWidget(self.log_view, 1)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(log_box)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        self.splitter = splitter
        return splitter

    def _crash_banner(self, parent: QWidget) -> QFrame:
        """The selected worker's latest crashes, newest first, until the user dismisses them."""
        frame = QFrame(parent)
        frame.setObjectName("Banner")
        self.crash_text = label("", "BannerText", frame)
        self.crash_text.setTextFormat(Qt.TextFormat.RichText)
        self.crash_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.crash_dismiss = QPushButton("Dismiss", frame)
        self.crash_dismiss.setToolTip("Hide these notices; the log keeps them")
        self.crash_dismiss.clicked.connect(self._dismiss_crashes)
        row = QHBoxLayout(frame)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(self.crash_text, 1)
        row.addWidget(self.crash_dismiss, 0, Qt.AlignmentFlag.AlignTop)
        frame.hide()
        return frame

    # -- actions -------------------------------------------------------------------------------

    def open_add_dialog(self) -> AddWorkerDialog:
        pool, concurrency = self._spec_defaults()
        dialog = AddWorkerDialog(self.supervisor.suggest_spec(pool, concurrency), self)
        dialog.accepted.connect(lambda: self._add_from(dialog))
        dialog.finished.connect(dialog.deleteLater)
        self.add_dialog = dialog
        dialog.open()
        return dialog

    def _add_from(self, dialog: AddWorkerDialog) -> None:
        try:
            worker_id = self.supervisor.add_worker(dialog.spec())
        except ValueError as exc:
            dialog.show_error(str(exc))
            dialog.open()
            return
        self.select(worker_id)
        self.worker_added.emit(worker_id)

    def start_local_worker(self) -> str:
        """Start a stopped worker of this computer, or add one with the default settings."""
        for snapshot in self.supervisor.workers():
            if snapshot.state in (WorkerState.STOPPED, WorkerState.FAILED):
                self.supervisor.start_worker(snapshot.worker_id)
                return snapshot.worker_id
        pool, concurrency = self._spec_defaults()
        worker_id = self.supervisor.add_worker(self.supervisor.suggest_spec(pool, concurrency))
        self.worker_added.emit(worker_id)
        return worker_id

    def select(self, worker_id: str) -> None:
        select_row(self.table, self.model.row_of(worker_id))

    def selected(self) -> WorkerSnapshot | None:
        index = selected_row(self.table)
        return self.model.snapshot(index.row()) if index is not None else None

    def _act(self, action: Callable[[str], None]) -> None:
        snapshot = self.selected()
        if snapshot is not None and snapshot.location == Location.LOCAL:
            action(snapshot.worker_id)

    # -- updates -------------------------------------------------------------------------------

    def _rows_changed(self) -> None:
        has_rows = self.model.rowCount() > 0
        if has_rows:
            self.starting = False
        self._show_empty_state()
        self.stack.setCurrentIndex(1 if has_rows else 0)
        self.toolbar.setVisible(has_rows)
        if has_rows and self.selected() is None:
            self.table.selectRow(0)
        self._refresh_selected()

    def _show_empty_state(self) -> None:
        if self.starting:
            self.empty_title.setText("Starting a worker on this computer…")
            self.empty_text.setText(
                "It appears here in a moment, ready to crawl. Meanwhile you can describe a "
                "crawl on the New crawl page."
            )
        else:
            self.empty_title.setText("No workers yet")
            self.empty_text.setText(
                "Workers do the crawling. Click Add worker to start one on this computer. "
                "Workers started on other computers with the same Redis show up here too."
            )
        self.empty_button.setVisible(not self.starting)

    def _on_online(self, event: WorkersOnline) -> None:
        # The first count comes a few seconds after start-up: no worker by then, none coming.
        if self.starting and event.count == 0 and self.model.rowCount() == 0:
            self.starting = False
            self._show_empty_state()

    def _selection_changed(self) -> None:
        snapshot = self.selected()
        self.log_view.clear()
        self._unfinished = []
        if snapshot is not None and snapshot.location == Location.LOCAL:
            lines = self.supervisor.log_lines(snapshot.worker_id)
            if not self.full_tracebacks.isChecked():
                shown, self._unfinished = fold_tracebacks(lines)
                lines = shown + self._unfinished
            self.log_view.setPlainText("\n".join(lines))
        self._follow_log = True
        self._scroll_log()
        self._refresh_selected()

    def _refresh_selected(self) -> None:
        snapshot = self.selected()
        local = snapshot is not None and snapshot.location == Location.LOCAL
        state = snapshot.state if snapshot is not None else None
        self.start_button.setEnabled(local and state in _CAN_START)
        self.stop_button.setEnabled(local and state in _CAN_STOP)
        self.restart_button.setEnabled(local and state not in (WorkerState.STOPPING, None))
        self.remove_button.setEnabled(local and state in (WorkerState.STOPPED, WorkerState.FAILED))
        if snapshot is None:
            self.log_title.setText("Log")
            self.problem.hide()
            self.crash_box.hide()
            return
        if not local:
            self.log_title.setText(f"{snapshot.node} — remote worker")
            self.log_view.setPlaceholderText(
                "This worker was started outside this window; its log stays where it runs."
            )
        else:
            self.log_title.setText(f"Log of {snapshot.node}")
        self._show_problem(snapshot)
        self._show_crashes(snapshot)

    def _show_crashes(self, snapshot: WorkerSnapshot) -> None:
        crashes = self.model.crashes(snapshot.worker_id)
        if not crashes:
            self.crash_box.hide()
            return
        title = "Latest crash" if len(crashes) == 1 else f"Latest {len(crashes)} crashes"
        lines = "".join(f"<li>{_escape(crash_notice(c))}</li>" for c in crashes)
        hints = dict.fromkeys(h for c in crashes if (h := signal_hint(c.signal)))
        notes = "".join(f"<br><span style='color:{MUTED_TEXT}'>{_escape(h)}</span>" for h in hints)
        self.crash_text.setText(
            f"<b>{title}</b><ul style='margin:2px 0 0 -24px'>{lines}</ul>{notes}"
        )
        self.crash_box.show()

    def _dismiss_crashes(self) -> None:
        snapshot = self.selected()
        if snapshot is not None:
            self.model.clear_crashes(snapshot.worker_id)

    def _show_problem(self, snapshot: WorkerSnapshot) -> None:
        if snapshot.state != WorkerState.FAILED:
            self.problem.hide()
            return
        text = f"<b>{snapshot.node} stopped for good:</b> {_escape(snapshot.error or '')}"
        if snapshot.last_lines:
            tail = "\n".join(_escape(line) for line in snapshot.last_lines[-6:])
            text += f"<pre style='margin:4px 0'>{tail}</pre>"
        text += "Fix the cause, then click Start to try again."
        self.problem_text.setText(text)
        self.problem.show()

    def _log_scrolled(self, value: int) -> None:
        self._follow_log = value >= self.log_view.verticalScrollBar().maximum() - 2

    def _scroll_log(self) -> None:
        if self._follow_log:
            bar = self.log_view.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _on_log(self, event: WorkerLog) -> None:
        snapshot = self.selected()
        if snapshot is None or snapshot.worker_id != event.worker_id:
            return
        lines = list(event.lines)
        if not self.full_tracebacks.isChecked():
            # A traceback's lines already shown while it arrived give way to its one line.
            held = len(self._unfinished)
            lines, self._unfinished = fold_tracebacks(self._unfinished + lines)
            if held:
                self._drop_last_lines(held)
            lines += self._unfinished
        for line in lines:
            self.log_view.appendPlainText(line)

    def _drop_last_lines(self, count: int) -> None:
        document = self.log_view.document()
        if document.blockCount() <= count:
            self.log_view.clear()
            return
        cursor = self.log_view.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        for _ in range(count):  # up to the start of the first line to drop...
            cursor.movePosition(cursor.MoveOperation.PreviousBlock, cursor.MoveMode.KeepAnchor)
        # ...and the line break before it, so no empty line stays behind.
        cursor.movePosition(cursor.MoveOperation.EndOfBlock, cursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
