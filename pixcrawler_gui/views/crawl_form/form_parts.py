"""Small parts of the crawl form: message banners, dropped files, text helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFrame, QVBoxLayout, QWidget

from pixcrawler_gui.views.style import label


def dropped_file(event: QDragEnterEvent | QDropEvent) -> Path | None:
    """The single local file a drag carries, if it carries one."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    if len(urls) == 1 and urls[0].isLocalFile():
        return Path(urls[0].toLocalFile())
    return None


class Banner(QFrame):
    text: Any


def banner(name: str, parent: QWidget) -> Banner:
    frame = Banner(parent)
    frame.setObjectName(name)
    frame.text = label("", "BannerText", frame)
    frame.text.setTextFormat(Qt.TextFormat.RichText)
    frame.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    row = QVBoxLayout(frame)
    row.setContentsMargins(10, 6, 10, 6)
    row.addWidget(frame.text)
    frame.hide()
    return frame


def category_problem(line: str) -> str:
    return "has no keywords yet" if line == "must not be empty" else f"— {line}"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
