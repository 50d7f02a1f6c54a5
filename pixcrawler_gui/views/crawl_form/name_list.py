"""An editable list of names (the form's categories and keywords): add, remove, rename in
place, and add many at once by pasting lines (into the box below it, or Ctrl+V on the list)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixcrawler_gui.views.style import RED, dot_icon, label


def split_lines(text: str) -> list[str]:
    """Non-empty, stripped lines, each once, in order."""
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


class NameList(QWidget):
    added = Signal(list)  # the new names, appended in order
    removed = Signal(int)
    renamed = Signal(int, str)
    current_changed = Signal(int)  # -1: none

    def __init__(self, title: str, noun: str, plural: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.noun = noun
        self._updating = False
        self.title = label(title, "SectionTitle", self, wrap=False)
        self.list = QListWidget(self)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.list.setToolTip(f"Double-click a {noun} to rename it; Ctrl+V pastes several lines")
        self.list.installEventFilter(self)
        self.bulk = QPlainTextEdit(self)
        self.bulk.setPlaceholderText(f"Type or paste {plural} here, one per line")
        self.bulk.setFixedHeight(48)
        self.add_button = QPushButton("Add", self)
        self.add_button.setToolTip(f"Add the {plural} typed above (or a new one to name)")
        self.remove_button = QPushButton("Remove", self)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.title)
        column.addWidget(self.list, 1)
        column.addWidget(self.bulk)
        column.addLayout(buttons)

        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button.clicked.connect(self.remove_current)
        self.list.itemChanged.connect(self._item_changed)
        self.list.currentRowChanged.connect(self._current_changed)
        self._refresh_buttons()

    # -- content -------------------------------------------------------------------------------

    def set_names(self, names: list[str], current: int = 0) -> None:
        self._updating = True
        self.list.clear()
        for name in names:
            self.list.addItem(self._item(name))
        self._updating = False
        self.list.setCurrentRow(min(current, len(names) - 1) if names else -1)
        self._refresh_buttons()

    def names(self) -> list[str]:
        return [self.list.item(row).text() for row in range(self.list.count())]

    def current_row(self) -> int:
        return self.list.currentRow()

    def set_problems(self, problems: dict[int, list[str]]) -> None:
        """Mark the rows with problems (a red dot, the reasons in the tooltip)."""
        self._updating = True
        for row in range(self.list.count()):
            item = self.list.item(row)
            lines = problems.get(row, [])
            item.setIcon(dot_icon(RED) if lines else dot_icon("#00000000"))
            item.setToolTip("\n".join(lines))
        self._updating = False

    def _item(self, name: str) -> QListWidgetItem:
        item = QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        item.setIcon(dot_icon("#00000000"))
        return item

    # -- actions -------------------------------------------------------------------------------

    def add_names(self, names: list[str]) -> None:
        taken = {n.casefold() for n in self.names()}
        fresh = [n for n in names if n.casefold() not in taken]
        if not fresh:
            return
        self._updating = True
        for name in fresh:
            self.list.addItem(self._item(name))
        self._updating = False
        self.added.emit(fresh)
        self.list.setCurrentRow(self.list.count() - 1)
        self._refresh_buttons()

    def _add_clicked(self) -> None:
        names = split_lines(self.bulk.toPlainText())
        if names:
            self.bulk.clear()
            self.add_names(names)
            return
        # Nothing typed: add one with a free placeholder name and let it be renamed at once.
        base = f"new {self.noun}"
        taken = {n.casefold() for n in self.names()}
        name = next(f"{base} {i}" if i > 1 else base for i in range(1, 10_000)
                    if (f"{base} {i}" if i > 1 else base).casefold() not in taken)  # fmt: skip
        self.add_names([name])
        self.list.editItem(self.list.item(self.list.count() - 1))

    def remove_current(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self._updating = True
        self.list.takeItem(row)
        self._updating = False
        self.removed.emit(row)
        self._current_changed(self.list.currentRow())
        self._refresh_buttons()

    def rename(self, row: int, name: str) -> None:
        item = self.list.item(row)
        if item is not None:
            item.setText(name)  # emits itemChanged -> renamed

    def _item_changed(self, item: QListWidgetItem) -> None:
        if not self._updating:
            self.renamed.emit(self.list.row(item), item.text())

    def _current_changed(self, row: int) -> None:
        if not self._updating:
            self.current_changed.emit(row)
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        self.remove_button.setEnabled(self.list.currentRow() >= 0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.list
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.matches(QKeySequence.StandardKey.Paste)
            and self.list.state() != QAbstractItemView.State.EditingState
        ):
            names = split_lines(QGuiApplication.clipboard().text())
            if names:
                self.add_names(names)
                return True
        return super().eventFilter(watched, event)
