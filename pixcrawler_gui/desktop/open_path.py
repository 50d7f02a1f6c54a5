"""Opening a folder or file in the desktop's file manager, and where there is none (a minimal
Linux, a container) showing its path to copy instead of doing nothing visible."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class PathDialog(QDialog):
    """The path of something that could not be opened, with a Copy button."""

    def __init__(self, path: Path, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Open {what} — PixCrawler")
        self.path = path
        message = QLabel(
            f"No program on this computer opens the {what}, so here is where it is. "
            "Copy the path into a file manager or a terminal.",
            self,
        )
        message.setWordWrap(True)
        self.path_edit = QLineEdit(str(path), self)
        self.path_edit.setReadOnly(True)
        self.path_edit.setMinimumWidth(420)
        self.path_edit.selectAll()
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy the path to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        self.close_button = QPushButton("Close", self)
        self.close_button.setDefault(True)
        self.close_button.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.copy_button)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(message)
        layout.addLayout(row)
        layout.addLayout(buttons)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(str(self.path))
        self.copy_button.setText("Copied")


def open_path(path: Path, what: str, parent: QWidget | None = None) -> bool:
    """Open `path` with the desktop; when nothing can, show it in a `PathDialog` (a child of
    `parent`). True when the desktop opened it."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    dialog = PathDialog(path, what, parent)
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return False
