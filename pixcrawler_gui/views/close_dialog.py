"""Asked on close while workers are busy: keep them running in the background, or stop them."""

from __future__ import annotations

import asyncio
from enum import Enum

from PySide6.QtWidgets import QMessageBox, QWidget


class CloseChoice(Enum):
    KEEP = "keep"
    STOP = "stop"
    CANCEL = "cancel"


class CloseDialog(QMessageBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Workers are busy")
        self.setIcon(QMessageBox.Icon.Question)
        self.setText("Workers on this computer are still running jobs.")
        self.setInformativeText(
            "Keep them running in the background to let the jobs finish after PixCrawler "
            "closes, or stop them: each worker finishes its current task first."
        )
        self.keep_button = self.addButton(
            "Keep running in background", QMessageBox.ButtonRole.AcceptRole
        )
        self.stop_button = self.addButton(
            "Stop workers and quit", QMessageBox.ButtonRole.DestructiveRole
        )
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.keep_button)
        self.setEscapeButton(self.cancel_button)

    def choice(self) -> CloseChoice:
        clicked = self.clickedButton()
        if clicked is self.keep_button:
            return CloseChoice.KEEP
        if clicked is self.stop_button:
            return CloseChoice.STOP
        return CloseChoice.CANCEL


async def ask_close(parent: QWidget | None) -> CloseChoice:
    """Show the question without a nested event loop and wait for the answer."""
    dialog = CloseDialog(parent)
    answer: asyncio.Future[CloseChoice] = asyncio.get_running_loop().create_future()

    def finished(_: int) -> None:
        if not answer.done():
            answer.set_result(dialog.choice())

    dialog.finished.connect(finished)
    dialog.open()
    try:
        return await answer
    finally:
        dialog.deleteLater()
